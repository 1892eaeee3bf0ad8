package tests

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
)

// relFastBackoff retries quickly and gives up after limit (0: never).
func relFastBackoff(limit time.Duration) func() backoff.BackOff {
	return func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = time.Millisecond
		b.MaxInterval = 10 * time.Millisecond
		b.MaxElapsedTime = limit
		return b
	}
}

// relWrite runs n workload steps through db and fails the test on error.
func relWrite(t *testing.T, db *gorm.DB, wl *reliab.Workload, n int) {
	t.Helper()
	for range n {
		_, _, err := wl.Step(context.Background(), db)
		require.NoError(t, err)
	}
}

// relPosition returns the checkpoint and the log head.
func relPosition(t *testing.T, db *sql.DB) (cp, head int64) {
	t.Helper()
	require.NoError(t, db.QueryRow(`SELECT coalesce((SELECT position FROM oi_checkpoint WHERE name = 'main'), 0), coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'oi_events'), 0)`).Scan(&cp, &head))
	return cp, head
}

// TestFaultsApplyTxFailsAtRandomPoints runs the in-process worker on a
// connection pool whose statements and commits fail at random inside
// transactions (SQLite I/O and busy errors, permanent errors, and commits
// that succeed but report a failure), while the application writes. Every
// failed batch must roll back and be retried; the final state must be
// exact.
func TestFaultsApplyTxFailsAtRandomPoints(t *testing.T) {
	t.Parallel()
	steps := 200
	if *relLong {
		steps = 3000
	}
	path := testdb.Path(t)
	db := reliab.Prepare(t, path)
	sqlDB, err := db.DB()
	require.NoError(t, err)

	seed := uint64(time.Now().UnixNano())
	t.Logf("faults: seed %d", seed)
	faults := reliab.NewFaults(0.02, 0.2, seed)
	faults.Kinds = os.Getenv("REL_FAULT_KINDS")
	fdb := faults.Open(t, engine.DSN(path))
	var observed atomic.Int64
	w, err := indexer.Start(context.Background(), fdb, indexer.WithHolder("faulty"), indexer.WithPollInterval(5*time.Millisecond),
		indexer.WithBatchSize(10), indexer.WithBackoff(relFastBackoff(0)),
		// Injected permanent errors are attributed to a key or a table,
		// whose events are parked after max attempts (or when the backoff
		// policy gives up, which this one never does); do not let repeated
		// bad luck park them.
		indexer.WithMaxAttempts(1_000_000),
		indexer.WithObserver(indexer.Observer{Error: func(error) { observed.Add(1) }}))
	require.NoError(t, err)
	faults.Arm(true)
	wl := reliab.NewWorkload("faults", 11)
	relWrite(t, db, wl, steps)
	_, head := relPosition(t, sqlDB)
	require.Eventually(t, func() bool {
		cp, _ := relPosition(t, sqlDB)
		return cp >= head
	}, 2*time.Minute, 10*time.Millisecond, "the worker did not catch up under faults")
	faults.Arm(false)
	require.NoError(t, w.Sync(context.Background()))
	require.NoError(t, w.Close())
	sum := reliab.Check(t, sqlDB)
	require.Positive(t, faults.Injected.Load(), "no fault was injected")
	t.Logf("faults: %d faults injected in apply transactions (%d of them commits that succeeded but reported failure), %d errors observed and retried; final state %+v",
		faults.Injected.Load(), faults.Ambiguous.Load(), observed.Load(), sum)
}

// TestFaultsBadStateParkedNotStalled breaks the database by hand while the
// worker runs: a sidecar dropped, malformed events inserted, a registry row
// for a table that does not exist and one that is not JSON. The bad events
// must be parked as dead letters, status must name the problems, the worker
// must keep running and keep applying the other tables; and after the
// operator's repairs (rebuild, retry) the state is exact.
func TestFaultsBadStateParkedNotStalled(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := reliab.Prepare(t, path)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	ctx := context.Background()
	var parkedMu sync.Mutex
	parked := map[string]int{}
	w, err := indexer.Start(ctx, db, indexer.WithHolder("w"), indexer.WithPollInterval(5*time.Millisecond),
		indexer.WithBackoff(relFastBackoff(time.Second)), indexer.WithMaxAttempts(2),
		indexer.WithObserver(indexer.Observer{Parked: func(table string, n int, _ string) {
			parkedMu.Lock()
			parked[table] += n
			parkedMu.Unlock()
		}}))
	require.NoError(t, err)
	defer w.Close()
	wl := reliab.NewWorkload("bad", 5)
	relWrite(t, db, wl, 100)
	require.NoError(t, w.Sync(ctx))
	reliab.Check(t, sqlDB)

	exec := func(q string, args ...any) {
		t.Helper()
		_, err := sqlDB.Exec(q, args...)
		require.NoError(t, err, q)
	}
	var artID int64
	require.NoError(t, sqlDB.QueryRow(`SELECT max(id) FROM articles`).Scan(&artID))
	// A note the workload never touches (it writes only its own notes,
	// n000…n149), so that no later event of the key supersedes the bad
	// vector: a newer vector or a hard delete would rightly have the
	// indexer never apply it, and nothing would be parked.
	noteID := "zz-fixed"
	require.NoError(t, db.Create(&reliab.Note{ID: noteID, Text: "fixed"}).Error)
	require.NoError(t, w.Sync(ctx))
	exec(`DROP TABLE memos_fts`)
	now := time.Now().UnixNano()
	bad := []struct {
		tbl string
		key any
		op  int
		vec any
		old any
	}{
		{"articles", artID, 99, nil, nil},            // unknown op
		{"articles", "not-an-int", 2, nil, nil},      // a text key for an integer-keyed table
		{"articles", artID, 2, nil, "{not json"},     // a before-image that is not JSON
		{"articles", 3.5, 2, nil, nil},               // a key that is neither integer nor text
		{"notes", noteID, 2, []byte{1, 2, 3}, nil},   // a vector of 3 bytes
		{"ghosts", 1, 1, nil, nil},                   // a table with a registry row but no source table
		{"garbage", 1, 1, nil, nil},                  // a table whose registry row is not JSON
		{"unregistered", 1, 1, nil, nil},             // a table with no registry row at all
		{"articles", artID, 2, []byte("[1,2]"), nil}, // a JSON vector of the wrong dimension
	}
	ghostSpec := `{"version":1,"source":"ghosts","key":"id","key_type":"integer","fts":{"table":"ghosts_fts","mode":"intable","tokenize":"unicode61","columns":[{"name":"t","source":"t"}]}}`
	exec(`INSERT INTO oi_registry (source, spec, updated_at) VALUES ('ghosts', ?, 0), ('garbage', '{not json', 0)`, ghostSpec)
	for _, b := range bad {
		exec(`INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES (?, ?, ?, ?, ?, ?)`, b.tbl, b.key, b.op, b.vec, b.old, now)
	}
	// The application keeps writing every model, memos included (whose
	// sidecar is gone).
	relWrite(t, db, wl, 150)
	_, head := relPosition(t, sqlDB)
	require.Eventually(t, func() bool {
		cp, _ := relPosition(t, sqlDB)
		return cp >= head
	}, time.Minute, 10*time.Millisecond, "the worker stalled behind bad events")
	select {
	case <-w.Done():
		t.Fatalf("the worker stopped: %v", w.Err())
	default:
	}

	// Articles and notes written after the damage are indexed.
	var lastArt int64
	require.NoError(t, sqlDB.QueryRow(`SELECT max(id) FROM articles`).Scan(&lastArt))
	var n int
	require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM articles_fts_docsize WHERE id = ?`, lastArt).Scan(&n))
	require.Equal(t, 1, n, "a later article was not indexed")

	st, err := w.Indexer().Status(ctx)
	require.NoError(t, err)
	errs := map[string]string{}
	dead := map[string]int64{}
	for _, ts := range st.Tables {
		errs[ts.Table] = ts.Error
		dead[ts.Table] = ts.DeadLetters
	}
	require.Contains(t, errs["memos"], "memos_fts does not exist")
	require.Contains(t, errs["ghosts"], "ghosts does not exist")
	require.Contains(t, errs["garbage"], "registry entry of garbage")
	require.Contains(t, errs["unregistered"], "not registered")
	for _, tbl := range []string{"memos", "ghosts", "garbage", "unregistered", "articles", "notes"} {
		require.Positive(t, dead[tbl], "no dead letters for %s", tbl)
	}
	dls, err := w.Indexer().DeadLetters(ctx)
	require.NoError(t, err)
	reasons := map[string]bool{}
	for _, d := range dls {
		reasons[d.Table+": "+d.Error] = true
	}
	t.Logf("faults: %d dead letters after the damage; parked per table %v", len(dls), parked)
	for r := range reasons {
		t.Logf("faults: dead-letter reason %s", r)
	}

	// Repairs: drop the bad registry rows, rebuild memos (re-creates the
	// sidecar and folds its dead letters back), discard the malformed
	// events, and retry what is left.
	exec(`DELETE FROM oi_registry WHERE source IN ('ghosts', 'garbage')`)
	exec(`DELETE FROM oi_deadletters WHERE tbl IN ('ghosts', 'garbage', 'unregistered')`)
	for _, b := range bad {
		if b.tbl == "articles" || b.tbl == "notes" {
			exec(`DELETE FROM oi_deadletters WHERE tbl = ? AND key IS ? AND op = ? AND vec IS ? AND old IS ?`, b.tbl, b.key, b.op, b.vec, b.old)
		}
	}
	require.NoError(t, w.Indexer().Rebuild(ctx, "memos"))
	_, err = w.Indexer().RetryDeadLetters(ctx)
	require.NoError(t, err)
	require.NoError(t, w.Sync(ctx))
	reliab.Check(t, sqlDB)
}

// TestFaultsDiskFull fills the database up to the page limit of the
// indexer's connections (PRAGMA max_page_count, which makes SQLite fail
// with SQLITE_FULL exactly like a full disk). Drain must fail with a clear
// error and write nothing; a running worker must keep retrying without
// writing a partial batch, and finish once space is freed.
func TestFaultsDiskFull(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db, sqlDB := reliab.PrepareIndexed(t, path)
	ctx := context.Background()
	_, err := sqlDB.Exec(`CREATE TABLE rel_filler (b BLOB)`)
	require.NoError(t, err)
	for range 40 {
		_, err = sqlDB.Exec(`INSERT INTO rel_filler VALUES (randomblob(50000))`)
		require.NoError(t, err)
	}
	relWrite(t, db, reliab.NewWorkload("full", 3), 200)
	_, err = sqlDB.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(t, err)
	var pages int64
	require.NoError(t, sqlDB.QueryRow(`PRAGMA page_count`).Scan(&pages))

	limitedDSN, err := engine.DSNWith(path, engine.Params{BusyTimeoutMS: 10000, JournalMode: "wal", TxLock: "immediate",
		Pragmas: []string{"max_page_count(" + strconv.FormatInt(pages, 10) + ")"}})
	if errors.Is(err, engine.ErrUnsupported) {
		// mattn/go-sqlite3 takes no PRAGMA in a DSN and the pool's
		// connections cannot be limited one by one (issue 13, part 3).
		t.Skipf("engine %s: %v", engine.Name, err)
	}
	require.NoError(t, err)
	limited := testdb.Open(t, limitedDSN)
	sidecars := func() string {
		var v, f int64
		require.NoError(t, sqlDB.QueryRow(`SELECT (SELECT count(*) FROM articles_vec), (SELECT count(*) FROM articles_fts_docsize)`).Scan(&v, &f))
		cp, _ := relPosition(t, sqlDB)
		return fmt.Sprintf("checkpoint %d, %d vectors, %d documents", cp, v, f)
	}
	before := sidecars()

	var parked atomic.Int64
	noPark := indexer.Observer{Parked: func(string, int, string) { parked.Add(1) }}
	ix, err := indexer.New(limited, indexer.WithBackoff(relFastBackoff(300*time.Millisecond)), indexer.WithObserver(noPark))
	require.NoError(t, err)
	_, err = ix.Drain(ctx)
	require.Error(t, err)
	// SQLite says "database or disk is full"; sqlite-vec, when it is the
	// one that needed a page, loses the cause (see indexer/transient.go).
	code, ok := engine.ErrorCode(err)
	require.True(t, ok && code == engine.CodeFull || engine.IsVecChunkFailure(err), "want SQLITE_FULL, got %v", err)
	t.Logf("faults: disk full: Drain returned %q", err)
	require.Zero(t, parked.Load(), "events parked as dead letters because the disk was full")
	require.NoError(t, ix.Close())
	require.Equal(t, before, sidecars(), "a partial batch was written")

	var fullErrs atomic.Int64
	w, err := indexer.Start(ctx, limited, indexer.WithPollInterval(5*time.Millisecond), indexer.WithBackoff(relFastBackoff(200*time.Millisecond)),
		indexer.WithObserver(indexer.Observer{Error: func(err error) {
			if code, ok := engine.ErrorCode(err); ok && code == engine.CodeFull || engine.IsVecChunkFailure(err) {
				fullErrs.Add(1)
			}
		}, Parked: noPark.Parked}))
	require.NoError(t, err)
	defer w.Close()
	require.Eventually(t, func() bool { return fullErrs.Load() >= 3 }, time.Minute, 5*time.Millisecond)
	require.Equal(t, before, sidecars(), "a partial batch was written while the disk was full")
	// Free space: the pages go to the free list, which the limited
	// connections can reuse.
	_, err = sqlDB.Exec(`DELETE FROM rel_filler`)
	require.NoError(t, err)
	require.NoError(t, w.Sync(ctx))
	require.Zero(t, parked.Load(), "events parked as dead letters because the disk was full")
	reliab.Check(t, sqlDB)
	t.Logf("faults: disk full: %d SQLITE_FULL failures retried by the worker, then it caught up once space was freed", fullErrs.Load())
}

// TestFaultsReadOnlyDatabase opens the database read-only for the indexer
// (the in-process New, and the binary with a mode=ro URI): the call fails at
// once with ErrReadOnly (a read-only connection stays read-only, so retrying
// is pointless), nothing is written, and a later run on a writable handle
// applies everything.
func TestFaultsReadOnlyDatabase(t *testing.T) {
	bins := reliab.Build(t)
	path := testdb.Path(t)
	db, sqlDB := reliab.PrepareIndexed(t, path)
	relWrite(t, db, reliab.NewWorkload("ro", 9), 100)
	cp0, head := relPosition(t, sqlDB)
	require.Less(t, cp0, head)

	ro := testdb.Open(t, engine.DSN(path)+"&mode=ro")
	// The default backoff policy: a retried SQLITE_READONLY would show as
	// calls of the Error observer (and a minute's wait).
	var retried []error
	ix, err := indexer.New(ro, indexer.WithObserver(indexer.Observer{Error: func(err error) { retried = append(retried, err) }}))
	require.NoError(t, err) // the schema exists: New writes nothing
	_, err = ix.Drain(context.Background())
	require.Error(t, err)
	require.NoError(t, ix.Close())
	require.ErrorIs(t, err, indexer.ErrReadOnly)
	code, ok := engine.ErrorCode(err)
	require.True(t, ok && code == engine.CodeReadOnly, "want SQLITE_READONLY, got %v", err)
	require.Empty(t, retried, "SQLITE_READONLY from a read-only handle was retried")
	t.Logf("faults: read-only: Drain returned %q", err)

	p := relStart(t, bins, bins.Indexer, "drain", "--db", "file:"+path+"?mode=ro")
	require.Equal(t, 1, p.wait(t), "indexer drain on a read-only database:\n%s", p.out)
	require.Contains(t, p.out.String(), "read-only")
	t.Logf("faults: read-only: indexer drain said %q", strings.TrimSpace(p.out.String()))
	cp, _ := relPosition(t, sqlDB)
	require.Equal(t, cp0, cp, "something was applied through a read-only handle")

	p = relStart(t, bins, bins.Indexer, "drain", "--db", path)
	require.Equal(t, 0, p.wait(t), "indexer drain:\n%s", p.out)
	reliab.Check(t, sqlDB)
}

// TestFaultsFrozenLeaseHolderIsFenced freezes the `indexer run` binary that
// holds the lease with SIGSTOP past its lease TTL: an in-process worker
// takes over. After SIGCONT the frozen process must not apply anything:
// its applied counter (scraped from /metrics) stays put, the history of
// checkpoint advances shows only the new holder, and the new holder keeps
// the lease even when the old process exits and releases "its" lease.
func TestFaultsFrozenLeaseHolderIsFenced(t *testing.T) {
	bins := reliab.Build(t)
	path := testdb.Path(t)
	db, sqlDB := reliab.PrepareIndexed(t, path)
	ctx := context.Background()
	reliab.InstallHistory(t, sqlDB)
	wl := reliab.NewWorkload("stop", 21)

	a := relStart(t, bins, bins.Indexer, "run", "--db", path, "--holder", "A", "--lease-ttl", "1s", "--poll-interval", "20ms", "--metrics-addr", "127.0.0.1:0", "--log-every", "0")
	a.waitOutput(t, "serving metrics")
	m := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(a.out.String())
	require.NotNil(t, m, "no metrics address in:\n%s", a.out)
	metrics := "http://" + m[1] + "/metrics"
	relWrite(t, db, wl, 50)
	relWaitApplier(t, sqlDB, "A")
	_, head := relPosition(t, sqlDB)
	require.Eventually(t, func() bool { cp, _ := relPosition(t, sqlDB); return cp >= head }, time.Minute, 10*time.Millisecond)

	// Freeze A while it holds no SQLite lock: a process frozen inside a
	// write transaction blocks every writer until it resumes, which no
	// lease can help (see docs/RELIABILITY.md).
	var appliedA float64
	for try := 0; ; try++ {
		appliedA = relMetric(t, metrics, "outboxindexer_events_applied_total")
		a.signal(t, syscall.SIGSTOP)
		if relWriteLockFree(t, path) {
			break
		}
		require.Less(t, try, 50, "A always held the write lock when frozen")
		a.signal(t, syscall.SIGCONT)
		time.Sleep(20 * time.Millisecond)
	}
	var tokenA int64
	require.NoError(t, sqlDB.QueryRow(`SELECT token FROM oi_lease WHERE name = 'main' AND holder = 'A'`).Scan(&tokenA))

	relWrite(t, db, wl, 50)
	b, err := indexer.Start(ctx, db, indexer.WithHolder("B"), indexer.WithLease(indexer.DefaultLeaseName, time.Second), indexer.WithPollInterval(20*time.Millisecond))
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Sync(ctx)) // B takes over once A's lease expires
	var holder string
	var tokenB int64
	require.NoError(t, sqlDB.QueryRow(`SELECT holder, token FROM oi_lease WHERE name = 'main'`).Scan(&holder, &tokenB))
	require.Equal(t, "B", holder)
	require.Greater(t, tokenB, tokenA)

	a.signal(t, syscall.SIGCONT)
	// A is alive again: wait until it answers, let it run a few poll rounds
	// while the application writes, and check it applied nothing.
	for range 5 {
		relWrite(t, db, wl, 20)
		require.NoError(t, b.Sync(ctx))
		require.Equal(t, appliedA, relMetric(t, metrics, "outboxindexer_events_applied_total"), "the resumed process applied events")
		require.Zero(t, relMetric(t, metrics, "outboxindexer_lease_held"), "the resumed process believes it holds the lease")
	}
	a.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, a.wait(t), "A after SIGTERM:\n%s", a.out)
	require.NoError(t, sqlDB.QueryRow(`SELECT holder, token FROM oi_lease WHERE name = 'main'`).Scan(&holder, &tokenB))
	require.Equal(t, "B", holder, "A's exit released B's lease")
	require.True(t, b.Indexer().LeaseHeld())

	applies, _ := reliab.History(t, sqlDB)
	takeover := -1
	for i, ap := range applies {
		if ap.Holder == "B" && takeover < 0 {
			takeover = i
		}
		if takeover >= 0 {
			require.Equal(t, "B", ap.Holder, "batch %d after the takeover committed by %s", i, ap.Holder)
		}
	}
	reliab.CheckSingleApplier(t, sqlDB)
	relWrite(t, db, wl, 10)
	require.NoError(t, b.Sync(ctx))
	reliab.Check(t, sqlDB)
	t.Logf("faults: SIGSTOP: A (token %d) frozen past its 1s lease, B took over with token %d; after SIGCONT A applied nothing (events_applied_total stayed %v)", tokenA, tokenB, appliedA)
}

// relWriteLockFree reports whether a write transaction can start on the
// database within 200 ms.
func relWriteLockFree(t *testing.T, path string) bool {
	t.Helper()
	db, err := sql.Open(engine.DriverName, relDSN(t, path, engine.Params{BusyTimeoutMS: 200, TxLock: "immediate"}))
	require.NoError(t, err)
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return false
	}
	require.NoError(t, tx.Rollback())
	return true
}

// relMetric scrapes one unlabelled sample from a Prometheus text endpoint.
func relMetric(t *testing.T, url, name string) float64 {
	t.Helper()
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK
	}, time.Minute, 20*time.Millisecond, "metrics endpoint did not answer")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			require.NoError(t, err)
			return v
		}
	}
	t.Fatalf("metric %s not found in:\n%s", name, body)
	return 0
}

// relDSN is engine.DSNWith for settings every engine takes.
func relDSN(t *testing.T, path string, p engine.Params) string {
	t.Helper()
	d, err := engine.DSNWith(path, p)
	require.NoError(t, err)
	return d
}
