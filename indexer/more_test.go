package indexer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

func (e *env) seed(n int) {
	for i := 1; i <= n; i++ {
		e.createDoc(Doc{ID: int64(i), Title: fmt.Sprintf("title %d", i), Body: fmt.Sprintf("body word%d common", i%7), Score: float64(i) / 4, Cat: int64(i % 3)}, vec(i))
	}
	for i := 1; i <= n/2; i++ {
		e.createNote(Note{ID: fmt.Sprintf("n%03d", i), Text: fmt.Sprintf("note %d text", i)}, vec(1000+i))
	}
}

type snapshot struct {
	docs, notes map[string]vecRow
	fts         []string
}

func (e *env) snapshot() snapshot {
	s := snapshot{docs: e.readVec(e.docs), notes: e.readVec(e.notes)}
	// Temp tables live on one connection: create and read them on one.
	conn, err := e.sql.Conn(e.ctx)
	require.NoError(e.t, err)
	defer conn.Close()
	for _, f := range []string{"docs_fts", "notes_fts"} {
		_, err := conn.ExecContext(e.ctx, fmt.Sprintf("DROP TABLE IF EXISTS temp.%s_s", f))
		require.NoError(e.t, err)
		live, err := outbox.LiveTable(e.ctx, conn, f) // its generation after an online rebuild
		require.NoError(e.t, err)
		_, err = conn.ExecContext(e.ctx, fmt.Sprintf("CREATE VIRTUAL TABLE temp.%s_s USING fts5vocab(main, %s, instance)", f, outbox.Quote(live)))
		require.NoError(e.t, err)
		rows, err := conn.QueryContext(e.ctx, fmt.Sprintf("SELECT doc, col, term, offset FROM temp.%s_s ORDER BY 1, 2, 3, 4", f))
		require.NoError(e.t, err)
		for rows.Next() {
			var a, b, c, d any
			require.NoError(e.t, rows.Scan(&a, &b, &c, &d))
			s.fts = append(s.fts, fmt.Sprint(f, a, b, c, d))
		}
		rows.Close()
	}
	return s
}

func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, mode, outbox.ModeInTable)
			ix := e.indexer(withBatch(7), indexer.WithRetention(-1))
			e.seed(20)
			for i := 1; i <= 20; i += 3 {
				e.updateDoc(int64(i), map[string]any{"title": fmt.Sprintf("changed %d", i)}, i%2 == 0, vec(500+i))
			}
			e.softDeleteDoc(4)
			e.hardDeleteDoc(5)
			e.drain(ix)
			e.check()
			before := e.snapshot()
			head := e.count("SELECT max(id) FROM oi_events")
			for _, from := range []int64{0, 1, head / 2, head, head + 10} {
				require.NoError(t, ix.Replay(e.ctx, from))
				require.Equal(t, before, e.snapshot(), "replay from %d", from)
			}
			require.NoError(t, ix.Replay(e.ctx, 0))
			require.NoError(t, ix.Replay(e.ctx, 0))
			e.check()
			// Re-applying: move the checkpoint back (in-table/contentless and
			// vec0 are state based; external content must not be re-applied,
			// which the applier never does).
			if mode != outbox.ModeExternal {
				require.NoError(t, outbox.SetCheckpoint(e.ctx, e.sql, outbox.MainCheckpoint, 0))
				e.drain(ix)
				require.Equal(t, before, e.snapshot())
			}
		})
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	t.Run("dropped sidecar", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
		var parked []string
		ix := e.indexer(indexer.WithMaxAttempts(3), indexer.WithObserver(indexer.Observer{Parked: func(tbl string, n int, reason string) { parked = append(parked, tbl) }}))
		e.seed(4)
		e.drain(ix)
		e.exec("DROP TABLE docs_vec")
		e.updateDoc(1, map[string]any{"title": "after drop"}, true, vec(77))
		e.createNote(Note{ID: "z", Text: "still indexed"}, vec(78))
		e.drain(ix)
		// The note went through; the doc event is parked, table-level.
		st, err := ix.Status(e.ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, st.DeadLetters)
		require.Zero(t, st.Pending)
		require.Equal(t, []string{"docs"}, parked)
		dl, err := ix.DeadLetters(e.ctx)
		require.NoError(t, err)
		require.Len(t, dl, 1)
		require.Equal(t, "docs", dl[0].Table)
		require.Equal(t, 3, dl[0].Attempts)
		require.Contains(t, dl[0].Error, "docs_vec")
		require.ErrorContains(t, errors.New(dl[0].Error), outbox.TableFailure)
		// Later events of the broken table are parked behind, without retries.
		e.updateDoc(2, map[string]any{"title": "blocked"}, false, nil)
		e.drain(ix)
		st, _ = ix.Status(e.ctx)
		require.EqualValues(t, 2, st.DeadLetters)
		// Rebuild repairs it and folds the dead letters (with their vectors) in.
		require.NoError(t, ix.Rebuild(e.ctx, "docs"))
		st, _ = ix.Status(e.ctx)
		require.Zero(t, st.DeadLetters)
		e.drain(ix)
		e.check()
	})
	t.Run("malformed event and requeue", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, outbox.ModeInTable, outbox.ModeInTable)
		ix := e.indexer(indexer.WithMaxAttempts(2))
		e.seed(3)
		e.drain(ix)
		// A vector of the wrong size, a bad op, a NULL key.
		e.exec(`INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES ('docs', 2, 2, x'00', NULL, 0)`)
		e.exec(`INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES ('docs', 3, 99, NULL, NULL, 0)`)
		e.exec(`INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES ('docs', 2.5, 2, NULL, NULL, 0)`)
		e.updateDoc(1, map[string]any{"title": "fine"}, false, nil)
		e.drain(ix)
		e.check()
		dl, err := ix.DeadLetters(e.ctx)
		require.NoError(t, err)
		require.Len(t, dl, 3)
		require.Contains(t, dl[0].Error, "invalid vector")
		require.Contains(t, dl[1].Error, "unknown op")
		// Key 2 is blocked: its next event is parked behind the bad one.
		e.updateDoc(2, map[string]any{"title": "behind"}, false, nil)
		e.drain(ix)
		dl, _ = ix.DeadLetters(e.ctx)
		require.Len(t, dl, 4)
		require.Contains(t, dl[3].Error, "blocked")
		// Fix the bad payload, requeue key 2's dead letters (all of them).
		e.exec(`UPDATE oi_deadletters SET vec = ? WHERE id = ?`, enc(t, vec(42), outbox.EncodingBinary), dl[0].ID)
		e.vecs["docs/2"] = vec(42)
		n, err := ix.RetryDeadLetters(e.ctx, dl[0].ID)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		e.drain(ix)
		e.check()
		dl, _ = ix.DeadLetters(e.ctx)
		require.Len(t, dl, 2)
	})
	t.Run("registry row for a missing table", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, outbox.ModeInTable, outbox.ModeInTable)
		ghost := docSpec(outbox.ModeInTable)
		ghost.Source, ghost.Vec.Table, ghost.FTS.Table = "ghosts", "ghosts_vec", "ghosts_fts"
		// SaveSpec needs the source table (for its triggers): write the
		// registry row by hand.
		raw, err := json.Marshal(ghost)
		require.NoError(t, err)
		_, err = e.sql.Exec(`INSERT INTO oi_registry (source, spec, updated_at) VALUES (?, ?, 0)`, ghost.Source, string(raw))
		require.NoError(t, err)
		require.NoError(t, outbox.Append(e.ctx, e.sql, []outbox.Event{{Table: "ghosts", Key: int64(1), Op: outbox.OpInsert, Vec: []byte{}}, {Table: "nowhere", Key: int64(1), Op: outbox.OpInsert}}))
		ix := e.indexer(indexer.WithMaxAttempts(2))
		e.seed(2)
		e.drain(ix)
		e.check()
		st, err := ix.Status(e.ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, st.DeadLetters)
		byName := map[string]indexer.TableStatus{}
		for _, ts := range st.Tables {
			byName[ts.Table] = ts
		}
		require.Contains(t, byName["ghosts"].Error, "does not exist")
		require.Contains(t, byName["nowhere"].Error, "not registered")
		require.EqualValues(t, 2, byName["docs"].SourceRows)
	})
}

func TestRetryOnBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	e.seed(3)
	// One connection with a 1 ms busy timeout, so that SQLITE_BUSY surfaces
	// while another connection holds the write lock, and is retried with
	// backoff.
	e.sql.SetMaxOpenConns(1)
	e.exec("PRAGMA busy_timeout = 1")
	var mu sync.Mutex
	errs := 0
	ix := e.indexer(indexer.WithObserver(indexer.Observer{Error: func(err error) {
		mu.Lock()
		errs++
		mu.Unlock()
	}}))
	other := testdb.Open(t, e.path)
	osql, err := other.DB()
	require.NoError(t, err)
	conn, err := osql.Conn(e.ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(e.ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := ix.Drain(e.ctx)
		done <- err
	}()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return errs > 2 }, 5*time.Second, time.Millisecond)
	_, err = conn.ExecContext(e.ctx, "ROLLBACK")
	require.NoError(t, err)
	require.NoError(t, <-done)
	e.check()
}

func TestRunWakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeInTable, outbox.ModeContentless)
	var mu sync.Mutex
	batches := 0
	ix := e.indexer(indexer.WithPollInterval(time.Hour), indexer.WithObserver(indexer.Observer{Batch: func(indexer.BatchStats) { mu.Lock(); batches++; mu.Unlock() }}))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	e.seed(2)
	// With an hour-long poll, only Notify can wake it.
	ix.Notify()
	require.Eventually(t, func() bool { st, _ := ix.Status(e.ctx); return st.Pending == 0 && st.Applied > 0 }, 5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	e.check()

	// data_version: another connection commits; no Notify.
	ix2 := e.indexer(indexer.WithHolder("poller"), indexer.WithPollInterval(2*time.Millisecond))
	ctx, cancel = context.WithCancel(e.ctx)
	go func() { done <- ix2.Run(ctx) }()
	other := testdb.Open(t, e.path)
	require.NoError(t, other.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Create(&Doc{ID: 99, Title: "from elsewhere"}).Error)
		return outbox.Append(e.ctx, tx.Statement.ConnPool.(outbox.DB), []outbox.Event{{Table: "docs", Key: int64(99), Op: outbox.OpInsert, Vec: []byte{}}})
	}))
	require.Eventually(t, func() bool { st, _ := ix2.Status(e.ctx); return st.Pending == 0 && st.Head == st.Applied }, 5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	e.check()
}

// A worker over a pool of one connection (SetMaxOpenConns(1)) applies what
// another process writes: it does not keep the pool's only connection to
// watch data_version between polls (it reads the log on every tick
// instead), which would leave its own transactions none.
func TestRunOnOneConnectionPool(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeInTable, outbox.ModeContentless)
	e.sql.SetMaxOpenConns(1)
	ix := e.indexer(indexer.WithPollInterval(2 * time.Millisecond))
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	other := testdb.Open(t, e.path)
	for i := int64(1); i <= 3; i++ {
		require.NoError(t, other.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, tx.Create(&Doc{ID: 90 + i, Title: fmt.Sprintf("from elsewhere %d", i)}).Error)
			return outbox.Append(e.ctx, tx.Statement.ConnPool.(outbox.DB), []outbox.Event{{Table: "docs", Key: 90 + i, Op: outbox.OpInsert, Vec: []byte{}}})
		}))
		time.Sleep(20 * time.Millisecond)
	}
	require.Eventually(t, func() bool {
		st, err := ix.Status(e.ctx)
		return err == nil && st.Head == 3 && st.Applied == 3 && st.Pending == 0
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	e.check()
}

func TestStatusAndRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	ix := e.indexer(withBatch(50))
	e.seed(40)
	st, err := ix.Status(e.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 60, st.Head)
	require.EqualValues(t, 0, st.Applied)
	require.EqualValues(t, 60, st.Pending)
	require.Greater(t, st.OldestPendingAge, time.Duration(0))
	e.drain(ix)
	// 10 updates per row, half of them with a new vector.
	for round := range 10 {
		for i := 1; i <= 40; i++ {
			e.updateDoc(int64(i), map[string]any{"body": fmt.Sprintf("round %d", round)}, round%2 == 0, vec(round*100+i))
		}
	}
	for i := 31; i <= 40; i++ {
		e.hardDeleteDoc(int64(i))
	}
	e.drain(ix)
	e.check()
	st, err = ix.Status(e.ctx)
	require.NoError(t, err)
	require.Zero(t, st.Pending)
	require.Equal(t, st.Head, st.Applied)
	// One retained event per live key with a vector.
	require.EqualValues(t, 30+20, st.Retained)
	require.EqualValues(t, 30+20, e.count(`SELECT count(*) FROM oi_events`))
	var docs indexer.TableStatus
	for _, ts := range st.Tables {
		if ts.Table == "docs" {
			docs = ts
		}
	}
	require.EqualValues(t, 30, docs.SourceRows)
	require.EqualValues(t, 30, docs.Retained)
	require.Len(t, docs.Sidecars, 2)
	require.EqualValues(t, 30, docs.Sidecars[0].Rows)
	require.EqualValues(t, 30, docs.Sidecars[1].Rows)
	// A rebuild from the compacted log restores the exact vectors.
	require.NoError(t, ix.Rebuild(e.ctx))
	e.check()
}

func TestRebuild(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		for _, offline := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/offline=%v", mode, offline), func(t *testing.T) {
				t.Parallel()
				testRebuild(t, mode, offline)
			})
		}
	}
}

func testRebuild(t *testing.T, mode string, offline bool) {
	e := newEnv(t, mode, outbox.ModeContentless)
	var progress []indexer.Progress
	opts := []indexer.Option{indexer.WithRebuildBatchSize(300), indexer.WithProgress(func(p indexer.Progress) { progress = append(progress, p) })}
	if offline {
		opts = append(opts, indexer.WithOffline())
	}
	ix := e.indexer(opts...)
	e.seed(300)
	e.drain(ix)
	// Raw SQL bulk load bypassing gorm: FTS covers them after a rebuild.
	for i := 1001; i <= 1100; i++ {
		e.exec(`INSERT INTO docs (id, title, body, score, cat) VALUES (?, ?, 'bulk', 0, 0)`, i, fmt.Sprintf("bulk %d", i))
	}
	// Raw SQL update of an indexed row (drift for external content).
	e.exec(`UPDATE docs SET title = 'raw edit' WHERE id = 7`)
	// Delete most rows through "gorm" and drop a sidecar by hand.
	for i := 11; i <= 300; i++ {
		e.hardDeleteDoc(int64(i))
	}
	e.drain(ix)
	e.exec("DROP TABLE notes_fts")
	require.NoError(t, ix.Rebuild(e.ctx))
	e.check()
	// Progress for every sidecar, ending at the total.
	last := map[string]indexer.Progress{}
	for _, p := range progress {
		last[p.Sidecar] = p
	}
	if offline {
		require.Equal(t, indexer.Progress{Table: "docs", Sidecar: "docs_vec", Done: 110, Total: 110}, last["docs_vec"])
		require.Equal(t, indexer.Progress{Table: "docs", Sidecar: "docs_fts", Done: 110, Total: 110}, last["docs_fts"])
		require.Equal(t, indexer.Progress{Table: "notes", Sidecar: "notes_fts", Done: 150, Total: 150}, last["notes_fts"])
	} else {
		// One display per table, labelled with the sidecars of the
		// generation it builds, ending with the drop phase.
		require.Equal(t, indexer.Progress{Table: "docs", Sidecar: "docs_vec__g1,docs_fts__g1", Done: 110, Total: 110, Phase: outbox.PhaseDrop}, last["docs_vec__g1,docs_fts__g1"])
		require.Equal(t, indexer.Progress{Table: "notes", Sidecar: "notes_vec__g1,notes_fts__g1", Done: 150, Total: 150, Phase: outbox.PhaseDrop}, last["notes_vec__g1,notes_fts__g1"])
		require.Zero(t, e.count(`SELECT count(*) FROM oi_rebuild`))
		require.Zero(t, e.count(`SELECT count(*) FROM sqlite_master WHERE name IN ('docs_vec', 'docs_fts', 'notes_vec', 'oi_rebuild_vec_docs', 'oi_rebuild_vec_notes')`), "the previous generation and the vector states are dropped")
	}
	// Writes after the rebuild apply normally.
	e.updateDoc(1101, map[string]any{"title": "after rebuild"}, true, vec(9))
	e.updateDoc(7, map[string]any{"title": "gorm edit"}, false, nil)
	e.drain(ix)
	e.check()
	_, err := ix.Status(e.ctx)
	require.NoError(t, err)
	require.ErrorIs(t, ix.Rebuild(e.ctx, "nope"), indexer.ErrNotRegistered)
}

func TestDriftIsParked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	ix := e.indexer(indexer.WithMaxAttempts(1))
	e.seed(2)
	e.drain(ix)
	// An event for an indexed row without a before-image: the index cannot
	// be corrected exactly; the key is parked with an error asking for a
	// rebuild, and the rest goes on.
	require.NoError(t, outbox.Append(e.ctx, e.sql, []outbox.Event{{Table: "docs", Key: int64(1), Op: outbox.OpUpdate}}))
	e.updateDoc(2, map[string]any{"title": "fine"}, false, nil)
	e.drain(ix)
	dl, err := ix.DeadLetters(e.ctx)
	require.NoError(t, err)
	require.Len(t, dl, 1)
	require.Contains(t, dl[0].Error, "rebuild")
	require.NoError(t, ix.Rebuild(e.ctx, "docs"))
	e.check()
}

// TestRebuildReclaimsVectorSpace: sqlite-vec never frees the space of
// deleted vectors; a rebuild does, so the pages used after deleting most
// rows and rebuilding are proportional to the live rows.
func TestRebuildReclaimsVectorSpace(t *testing.T) {
	t.Parallel()
	const big = 384
	e := newEnv(t, outbox.ModeInTable, outbox.ModeInTable)
	e.exec(`CREATE TABLE embs (id INTEGER PRIMARY KEY, label TEXT)`)
	sp := &outbox.Spec{Version: outbox.SpecVersion, Source: "embs", Key: "id", KeyType: outbox.KeyInteger,
		Vec: &outbox.VecSpec{Table: "embs_vec", Column: "embedding", Dim: big, Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary}}
	require.NoError(t, outbox.SaveSpec(e.ctx, e.sql, sp))
	require.NoError(t, vecsink.Create(e.ctx, e.sql, sp))
	ix := e.indexer()
	const rows, live = 3000, 100
	v := make([]float32, big)
	var evs []outbox.Event
	for i := 1; i <= rows; i++ {
		e.exec(`INSERT INTO embs (id, label) VALUES (?, 'x')`, i)
		v[0] = float32(i)
		evs = append(evs, outbox.Event{Table: "embs", Key: int64(i), Op: outbox.OpInsert, Vec: encDim(t, v)})
	}
	require.NoError(t, outbox.Append(e.ctx, e.sql, evs))
	e.drain(ix)
	e.exec(`DELETE FROM embs WHERE id > ?`, live)
	evs = evs[:0]
	for i := live + 1; i <= rows; i++ {
		evs = append(evs, outbox.Event{Table: "embs", Key: int64(i), Op: outbox.OpDelete})
	}
	require.NoError(t, outbox.Append(e.ctx, e.sql, evs))
	e.drain(ix)
	require.EqualValues(t, live, e.count(`SELECT count(*) FROM embs_vec`))
	used := func() int64 {
		return e.count(`SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count)`)
	}
	chunksBefore, usedBefore := e.count(`SELECT count(*) FROM embs_vec_chunks`), used()
	require.NoError(t, ix.Rebuild(e.ctx, "embs"))
	// The online rebuild built generation 1 and dropped generation 0.
	require.Equal(t, "embs_vec__g1", e.live(sp).Vec.Live())
	require.Zero(t, e.count(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'embs_vec_%' AND name NOT LIKE 'embs_vec__g1%'`))
	chunksAfter, usedAfter := e.count(`SELECT count(*) FROM embs_vec__g1_chunks`), used()
	t.Logf("vec0 chunks %d -> %d, used pages %d -> %d", chunksBefore, chunksAfter, usedBefore, usedAfter)
	require.EqualValues(t, 3, chunksBefore)
	require.EqualValues(t, 1, chunksAfter)
	require.Less(t, usedAfter, usedBefore/2)
	require.EqualValues(t, live, e.count(`SELECT count(*) FROM embs_vec__g1`))
	var got []byte
	require.NoError(t, e.sql.QueryRow(`SELECT embedding FROM embs_vec__g1 WHERE rowid = 42`).Scan(&got))
	v[0] = 42
	require.Equal(t, encDim(t, v), got)
}

func encDim(t testing.TB, v []float32) []byte {
	b, err := outbox.EncodeVector(v, len(v), outbox.EncodingBinary)
	require.NoError(t, err)
	return b
}

// A key applied while later events of it are pending gets a floor; when
// events at or below the floor are parked and re-queued under new ids, the
// floor moves with them, so external-content FTS5 never deletes with a
// before-image that is no longer indexed.
func TestKeyFloorFollowsRequeuedDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	ix := e.indexer(withBatch(2), indexer.WithMaxAttempts(2))
	e.createDoc(Doc{ID: 1, Title: "alpha", Body: "first"}, vec(1))
	e.createDoc(Doc{ID: 2, Title: "other", Body: "second"}, vec(2))
	e.drain(ix)
	e.updateDoc(1, map[string]any{"title": "beta"}, false, nil)
	e.updateDoc(2, map[string]any{"body": "changed"}, false, nil)
	// An event of key 1 with a vector of the wrong size (its before-image
	// is right), then a good one.
	e.exec(`INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES ('docs', 1, 2, x'00', '["beta","first"]', 0)`)
	e.updateDoc(1, map[string]any{"title": "gamma"}, false, nil)
	e.drain(ix)
	// The first batch indexed key 1 at the head ("gamma") with a floor at
	// the head; the bad event and the "gamma" event sat at or below it.
	require.EqualValues(t, 1, e.count(`SELECT count(*) FROM oi_floor WHERE tbl = 'docs' AND key = 1`))
	dl, err := ix.DeadLetters(e.ctx)
	require.NoError(t, err)
	require.Len(t, dl, 2)
	require.Contains(t, dl[0].Error, "invalid vector")
	// Parked behind them: an update whose before-image is "gamma".
	e.updateDoc(1, map[string]any{"title": "delta"}, false, nil)
	e.drain(ix)
	_, err = ix.Compact(e.ctx)
	require.NoError(t, err)
	// Retention keeps a floor while dead letters of its key sit below it.
	require.EqualValues(t, 1, e.count(`SELECT count(*) FROM oi_floor WHERE tbl = 'docs' AND key = 1`))
	dl, err = ix.DeadLetters(e.ctx)
	require.NoError(t, err)
	require.Len(t, dl, 3)
	e.exec(`UPDATE oi_deadletters SET vec = ? WHERE id = ?`, enc(t, vec(42), outbox.EncodingBinary), dl[0].ID)
	e.vecs["docs/1"] = vec(42)
	n, err := ix.RetryDeadLetters(e.ctx, dl[0].ID)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	e.drain(ix)
	e.check()
	_, err = ix.Compact(e.ctx)
	require.NoError(t, err)
	require.Zero(t, e.count(`SELECT count(*) FROM oi_floor`))
}

// Status WithoutCounts agrees with the full Status on everything it
// reports (the positions, pending and dead-letter counts per table, the
// lease, problems with tables) and leaves out the counts that scan whole
// tables.
func TestStatusWithoutCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	ix := e.indexer(withBatch(50))
	e.seed(40)
	e.drain(ix)
	for i := 1; i <= 10; i++ {
		e.updateDoc(int64(i), map[string]any{"body": "before the rebuild"}, false, nil)
	}
	// The rebuild of docs covers its pending events; later ones are pending
	// again, above both the checkpoint and the table's rebuild position.
	require.NoError(t, ix.Rebuild(e.ctx, "docs"))
	for i := 1; i <= 5; i++ {
		e.updateDoc(int64(i), map[string]any{"body": "after the rebuild"}, true, vec(900+i))
	}
	e.createNote(Note{ID: "late", Text: "pending note"}, vec(999))

	compare := func() {
		t.Helper()
		full, err := ix.Status(e.ctx)
		require.NoError(t, err)
		lite, err := ix.Status(e.ctx, indexer.WithoutCounts())
		require.NoError(t, err)
		require.Equal(t, full.Head, lite.Head)
		require.Equal(t, full.Applied, lite.Applied)
		require.Equal(t, full.Pending, lite.Pending)
		require.Equal(t, full.DeadLetters, lite.DeadLetters)
		require.Equal(t, full.Lease, lite.Lease)
		require.Equal(t, full.OldestPendingAge > 0, lite.OldestPendingAge > 0)
		require.Positive(t, full.Retained)
		require.Zero(t, lite.Retained)
		require.Len(t, lite.Tables, len(full.Tables))
		for i, ft := range full.Tables {
			lt := lite.Tables[i]
			require.Equal(t, ft.Table, lt.Table)
			require.Equal(t, ft.Pending, lt.Pending, ft.Table)
			require.Equal(t, ft.DeadLetters, lt.DeadLetters, ft.Table)
			require.Equal(t, ft.Error, lt.Error, ft.Table)
			require.Zero(t, lt.Retained)
			require.Len(t, lt.Sidecars, len(ft.Sidecars))
			for j, fs := range ft.Sidecars {
				require.Equal(t, fs.Exists, lt.Sidecars[j].Exists)
				require.Zero(t, lt.Sidecars[j].Rows)
			}
		}
	}
	compare()
	st, err := ix.Status(e.ctx, indexer.WithoutCounts())
	require.NoError(t, err)
	require.EqualValues(t, 6, st.Pending, "5 doc updates after the rebuild and 1 note")

	e.drain(ix)
	compare()
	e.exec("DROP TABLE " + outbox.Quote(e.live(e.docs).Vec.Live()))
	compare()
	st, err = ix.Status(e.ctx, indexer.WithoutCounts())
	require.NoError(t, err)
	for _, ts := range st.Tables {
		if ts.Table == "docs" {
			require.Contains(t, ts.Error, "docs_vec")
		}
	}
}

// BatchStats tells the wait for the write lock from the transaction that
// holds it: a batch that waited for another connection's transaction
// reports the wait in Wait, not in Duration.
func TestBatchStatsWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeInTable, outbox.ModeContentless)
	var mu sync.Mutex
	var stats []indexer.BatchStats
	// No compaction: the worker's first pass ends with one (a write
	// transaction), which could wait out the transaction below and leave
	// the batch after it nothing to wait for (seen once in CI: Wait 3.5 ms).
	ix := e.indexer(indexer.WithPollInterval(time.Hour), indexer.WithRetention(-1), indexer.WithObserver(indexer.Observer{Batch: func(s indexer.BatchStats) { mu.Lock(); stats = append(stats, s); mu.Unlock() }}))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	// Once the worker holds the lease, its next batch writes nothing
	// before its own transaction.
	require.Eventually(t, ix.LeaseHeld, 5*time.Second, time.Millisecond)
	// The event is written inside the transaction that holds the lock, so
	// whenever the worker woke up, the only batch that finds it is one that
	// waited for that transaction to commit.
	const held = 200 * time.Millisecond
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
		d := Doc{ID: 1, Title: "title 1", Body: "body word1 common", Score: 0.25, Cat: 1}
		require.NoError(t, tx.Create(&d).Error) // takes the write lock
		e.appendEv(tx, outbox.Event{Table: "docs", Key: d.ID, Op: outbox.OpInsert, Vec: e.setVec("docs", d.ID, vec(1), outbox.EncodingBinary)})
		ix.Notify()
		time.Sleep(held)
		return nil
	}))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(stats) > 0 }, 5*time.Second, time.Millisecond)
	mu.Lock()
	first := stats[0]
	mu.Unlock()
	require.GreaterOrEqual(t, first.Wait, held/2, "the batch waited for the other transaction: %+v", first)
	require.Less(t, first.Duration, first.Wait, "Duration is the hold, without the wait: %+v", first)
}
