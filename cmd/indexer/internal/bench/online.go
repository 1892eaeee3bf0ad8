package bench

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/synth"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
)

// Online rebuild (issue 16): `indexer rebuild` (online, the default) of
// the sidecars of n Articles (two FTS5 fields, a 384-d vector) while the
// application writes Articles through the plugin at a steady rate, with the
// in-process worker running, against `indexer rebuild --offline` of the
// same table with no writer, in the same run.

// OnlineRebuildReport is what RunOnlineRebuild measured.
type OnlineRebuildReport struct {
	Rows int // source rows when the rebuild started
	Rate int // application writes per second asked

	OfflineSecs, OnlineSecs float64 // wall time of each rebuild process
	OfflineRSS, OnlineRSS   float64 // peak RSS of each rebuild process, MiB
	Ratio                   float64 // online rows/s ÷ offline rows/s

	// Application writes whose due time fell inside the online rebuild:
	// how many, how many failed, and their latency from the due time
	// (a stall delays every write due during it), ms.
	Writes, Errors   int
	P50, P99, MaxLat float64
	// The application's writes with no rebuild running (3 s), for
	// reference.
	BaseP50, BaseP99, BaseMax float64
	// The same for the offline rebuild's window when WithWriters is set
	// (the single transaction freezes writers), else zero.
	OfflineWrites, OfflineErrors int
	OfflineP99, OfflineMax       float64

	// Checks after the rebuild and a Sync: sidecar counts equal the source
	// rows, FTS5 integrity-check passed, and sampled KNN self-hits.
	SourceRows, VecRows, FTSRows int64
	SelfHits, Sampled            int
	PrepSecs                     float64
}

// RunOnlineRebuild prepares n indexed Articles in dir (the source rows and
// their vectors in the log are bulk-loaded, then indexed by the offline
// rebuild, which is also the baseline), then runs the online rebuild with
// the application writing rate rows/s. With offlineWriters, the writer also
// runs during the offline rebuild (its latencies show what the single
// transaction does to an application).
func RunOnlineRebuild(ctx context.Context, dir string, n, rate int, offlineWriters bool, log func(string, ...any)) (*OnlineRebuildReport, error) {
	bin, err := IndexerBinary(ctx)
	if err != nil {
		return nil, err
	}
	rep := &OnlineRebuildReport{Rate: rate}
	t0 := time.Now()
	if err := bulkLoadArticles(ctx, dir, n, log); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "bench.db")
	// The first offline rebuild indexes the bulk-loaded rows; the drain
	// moves the checkpoint past their events and compacts the log.
	log("online rebuild bench: indexing %d bulk-loaded rows (offline rebuild + drain)", n)
	if _, err := runIndexer(ctx, bin, false, "rebuild", "--db", path, "--offline", "--progress", "off", "--log-level", "warn"); err != nil {
		return nil, err
	}
	if _, err := runIndexer(ctx, bin, false, "drain", "--db", path, "--progress", "off", "--log-level", "warn"); err != nil {
		return nil, err
	}
	rep.PrepSecs = time.Since(t0).Seconds()

	// The application: a writer at rate rows/s through the plugin, the
	// in-process worker applying its events.
	app, err := startApp(ctx, dir, rate)
	if err != nil {
		return nil, err
	}
	defer app.close()

	measure := func(offline bool) (procResult, time.Time, time.Time, error) {
		level := "warn"
		if os.Getenv("OI_BENCH_DEBUG") != "" {
			level = "debug"
		}
		args := []string{"rebuild", "--db", path, "--progress", "off", "--log-level", level}
		if offline {
			args = append(args, "--offline")
		}
		start := time.Now()
		r, err := runIndexer(ctx, bin, true, args...)
		if os.Getenv("OI_BENCH_DEBUG") != "" {
			log("indexer %v:\n%s", args, r.out)
		}
		return r, start, time.Now(), err
	}
	sqlDB, err := app.db.DB()
	if err != nil {
		return nil, err
	}
	count := func() (int64, error) {
		var c int64
		err := sqlDB.QueryRowContext(ctx, `SELECT count(*) FROM articles`).Scan(&c)
		return c, err
	}

	// Offline, for the ratio (the writer paused unless asked).
	if !offlineWriters {
		app.pause(true)
	}
	time.Sleep(200 * time.Millisecond)
	rows, err := count()
	if err != nil {
		return nil, err
	}
	log("online rebuild bench: offline rebuild of %d rows", rows)
	off, offStart, offEnd, err := measure(true)
	if err != nil {
		return nil, err
	}
	rep.OfflineSecs, rep.OfflineRSS = off.wall.Seconds(), float64(off.maxRSS)/(1<<20)
	offRate := float64(rows) / off.wall.Seconds()
	if offlineWriters {
		ws := app.window(offStart, offEnd)
		rep.OfflineWrites, rep.OfflineErrors = len(ws.lat), ws.errors
		rep.OfflineP99, rep.OfflineMax = pct(ws.lat, 0.99), pct(ws.lat, 1)
	}
	app.pause(false)
	// The application alone, for reference, once its worker has caught up
	// with what the offline rebuild left it (the first seconds after it
	// are not the application's normal latency).
	if err := app.worker.Sync(ctx); err != nil {
		return nil, err
	}
	// The offline rebuild left gigabytes in the WAL at 1M rows: copied
	// into the database by whichever commits come next, they would stall
	// the reference window and the start of the online rebuild, which in
	// an application do not follow an offline rebuild by seconds.
	if err := checkpointTruncate(ctx, sqlDB); err != nil {
		return nil, err
	}
	time.Sleep(time.Second)
	quiet := time.Now()
	time.Sleep(3 * time.Second)
	ws0 := app.window(quiet, time.Now())
	if os.Getenv("OI_BENCH_DEBUG") != "" {
		app.mu.Lock()
		for _, x := range app.writes {
			if !x.due.Before(quiet) && x.lat > 25*time.Millisecond {
				log("slow write with no rebuild due %s lat %v (plugin %v, begin %v, body %v, commit %v, after %v)", x.due.Format("15:04:05.000"), x.lat, x.pre, x.begin, x.body, x.commit, x.post)
			}
		}
		app.mu.Unlock()
	}
	rep.BaseP50, rep.BaseP99, rep.BaseMax = pct(ws0.lat, 0.5), pct(ws0.lat, 0.99), pct(ws0.lat, 1)

	if rep.Rows, err = countInt(count); err != nil {
		return nil, err
	}
	log("online rebuild bench: online rebuild of %d rows while the application writes %d rows/s", rep.Rows, rate)
	// OI_BENCH_CPUPROFILE=file profiles this process (the application and
	// its worker; the rebuild is another process) during the online
	// rebuild.
	stopProfile, err := startCPUProfile(os.Getenv("OI_BENCH_CPUPROFILE"))
	if err != nil {
		return nil, err
	}
	on, onStart, onEnd, err := measure(false)
	stopProfile()
	if err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond)
	app.pause(true)
	rep.OnlineSecs, rep.OnlineRSS = on.wall.Seconds(), float64(on.maxRSS)/(1<<20)
	rep.Ratio = (float64(rep.Rows) / on.wall.Seconds()) / offRate
	ws := app.window(onStart, onEnd)
	if os.Getenv("OI_BENCH_DEBUG") != "" {
		app.mu.Lock()
		for _, x := range app.writes {
			if !x.due.Before(onStart) && !x.due.After(onEnd) && x.lat > 25*time.Millisecond {
				log("slow write due %s lat %v (plugin %v, begin %v, body %v, commit %v, after %v)", x.due.Format("15:04:05.000"), x.lat, x.pre, x.begin, x.body, x.commit, x.post)
			}
		}
		app.mu.Unlock()
	}
	rep.Writes, rep.Errors = len(ws.lat), ws.errors
	rep.P50, rep.P99, rep.MaxLat = pct(ws.lat, 0.5), pct(ws.lat, 0.99), pct(ws.lat, 1)

	// Exactness: the writer is paused; counts in one read transaction.
	time.Sleep(100 * time.Millisecond)
	if err := app.worker.Sync(ctx); err != nil {
		return nil, err
	}
	rtx, err := sqlDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer rtx.Rollback()
	spec, err := outbox.LoadSpec(ctx, rtx, "articles")
	if err != nil {
		return nil, err
	}
	for _, q := range []struct {
		dst *int64
		sql string
	}{
		{&rep.SourceRows, `SELECT count(*) FROM articles`},
		{&rep.VecRows, `SELECT count(*) FROM ` + outbox.Quote(spec.Vec.Live())},
		{&rep.FTSRows, `SELECT count(*) FROM ` + outbox.Quote(spec.FTS.Live()+"_docsize")},
	} {
		if err := rtx.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
			return nil, err
		}
	}
	rtx.Rollback()
	fts := outbox.Quote(spec.FTS.Live())
	if _, err := sqlDB.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %[1]s(%[1]s, rank) VALUES ('integrity-check', 1)`, fts)); err != nil {
		return nil, fmt.Errorf("bench: FTS5 integrity-check after the online rebuild: %w", err)
	}
	g := synth.New(1, synth.DefaultVocab)
	step := max(n/50, 1)
	for i := 0; i < n; i++ {
		g.Title()
		g.Text(BodyWords)
		v := g.Vector(Dim)
		if i%step != 0 {
			continue
		}
		rep.Sampled++
		res, err := vecsink.KNN[Article](ctx, app.db, v, 1)
		if err != nil {
			return nil, err
		}
		if len(res) == 1 && res[0].Model.ID == uint(i+1) {
			rep.SelfHits++
		}
	}
	return rep, nil
}

// checkpointTruncate copies the whole WAL into the database and empties
// it, retrying while readers or writers are in the way.
func checkpointTruncate(ctx context.Context, db *sql.DB) error {
	for i := 0; ; i++ {
		var busy, log, done int64
		if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done); err != nil {
			return fmt.Errorf("bench: checkpoint: %w", err)
		}
		if busy == 0 || i == 50 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countInt(f func() (int64, error)) (int, error) {
	c, err := f()
	return int(c), err
}

// pct returns the p-quantile of xs (p = 1: the maximum), 0 when empty.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(int(p*float64(len(s))), len(s)-1)]
}

// bulkLoadArticles creates the Articles table with its sidecars and loads n
// rows and one vector event per row (what capture would have logged),
// without the capture triggers (put back afterwards), in transactions of
// 5000 rows, generating the documents as it goes (1M documents do not fit
// comfortably in memory at once). The documents are those of Docs(n).
func bulkLoadArticles(ctx context.Context, dir string, n int, log func(string, ...any)) error {
	db, err := openIndexed(ctx, dir)
	if err != nil {
		return err
	}
	defer Close(db)
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	if err := outbox.DropTriggers(ctx, sqlDB, "articles"); err != nil {
		return err
	}
	g := synth.New(1, synth.DefaultVocab)
	const chunk = 5000
	now := time.Now().UnixNano()
	for from := 0; from < n; from += chunk {
		tx, err := sqlDB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		src, err := tx.PrepareContext(ctx, `INSERT INTO articles (id, title, body, views) VALUES (?, ?, ?, 0)`)
		if err != nil {
			tx.Rollback()
			return err
		}
		ev, err := tx.PrepareContext(ctx, `INSERT INTO oi_events (tbl, key, op, vec, at) VALUES ('articles', ?, ?, ?, ?)`)
		if err != nil {
			tx.Rollback()
			return err
		}
		for i := from; i < min(from+chunk, n); i++ {
			title, body, v := g.Title(), g.Text(BodyWords), g.Vector(Dim)
			b, _ := outbox.EncodeVector(v, Dim, outbox.EncodingBinary)
			if _, err := src.ExecContext(ctx, i+1, title, body); err != nil {
				tx.Rollback()
				return err
			}
			if _, err := ev.ExecContext(ctx, i+1, int64(outbox.OpInsert), b, now); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		if (from/chunk)%40 == 39 {
			log("online rebuild bench: loaded %d of %d rows", from+chunk, n)
		}
	}
	return outbox.CreateTriggers(ctx, sqlDB, mustSpec(ctx, sqlDB))
}

func mustSpec(ctx context.Context, db *sql.DB) *outbox.Spec {
	s, err := outbox.LoadSpec(ctx, db, "articles")
	if err != nil {
		panic(err) // not reached: openIndexed registered it
	}
	return s
}

// app is the application of the online rebuild bench: a writer goroutine
// creating Articles at a fixed rate through the plugin, and the worker.
type app struct {
	db     *gorm.DB
	worker *indexer.Worker
	stop   chan struct{}
	wg     sync.WaitGroup

	mu        sync.Mutex
	paused    bool
	writes    []appWrite
	last      appWrite  // the parts of the last write (debugTimes; the writer's own)
	started   time.Time // when the writer called the last Create
	committed time.Time // when gorm's COMMIT of the last Create returned
}

type appWrite struct {
	due time.Time
	lat time.Duration
	err bool
	// With OI_BENCH_DEBUG: the write's parts, from gorm's callbacks: what
	// runs before gorm's BEGIN (the plugin's callbacks; with
	// SkipDefaultTransaction its own BEGIN, so the wait for the write lock:
	// _txlock=immediate), gorm's BEGIN, the statements, and COMMIT (with
	// any checkpoint it runs), and what runs after gorm's COMMIT (the
	// plugin's last callback: with SkipDefaultTransaction its COMMIT).
	pre, begin, body, commit, post time.Duration
}

// debugTimes registers callbacks timing the parts of each Create on db
// into a (OI_BENCH_DEBUG): the writer is one goroutine, the only one
// creating through db.
func (a *app) debugTimes(db *gorm.DB) error {
	cb := db.Callback().Create()
	var t0, t1, t2 time.Time
	// Each callback is pinned on both sides: one with only an After may
	// be sorted anywhere after it.
	for _, r := range []struct {
		name, after, before string
		fn                  func()
	}{
		{"bench:begin0", "", "gorm:begin_transaction", func() {
			t0 = time.Now()
			a.last.pre = t0.Sub(a.started)
		}},
		{"bench:begin1", "gorm:begin_transaction", "gorm:before_create", func() { t1 = time.Now() }},
		{"bench:commit0", "gorm:after_create", "gorm:commit_or_rollback_transaction", func() { t2 = time.Now() }},
		{"bench:commit1", "gorm:commit_or_rollback_transaction", "", func() {
			a.committed = time.Now()
			a.last = appWrite{pre: a.last.pre, begin: t1.Sub(t0), body: t2.Sub(t1), commit: a.committed.Sub(t2)}
		}},
	} {
		fn := r.fn
		p := cb.Before(r.before)
		if r.after != "" {
			p = cb.After(r.after)
			if r.before != "" {
				p = p.Before(r.before)
			}
		}
		if err := p.Register(r.name, func(*gorm.DB) { fn() }); err != nil {
			return err
		}
	}
	return nil
}

type window struct {
	lat    []float64 // ms
	errors int
}

func startApp(ctx context.Context, dir string, rate int) (*app, error) {
	a := &app{stop: make(chan struct{})}
	var w *indexer.Worker
	var wMu sync.Mutex
	db, err := openIndexed(ctx, dir, gormplugin.WithNotify(func() {
		wMu.Lock()
		x := w
		wMu.Unlock()
		if x != nil {
			x.Notify()
		}
	}))
	if err != nil {
		return nil, err
	}
	a.db = db
	var wopts []indexer.Option
	if os.Getenv("OI_BENCH_DEBUG") != "" {
		l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("who", "app")
		wopts = append(wopts, indexer.WithLogger(l), indexer.WithObserver(indexer.Observer{Batch: func(s indexer.BatchStats) {
			if s.Wait+s.Duration > 20*time.Millisecond {
				// Duration runs from the lock to the end of the commit,
				// with any checkpoint the commit ran.
				l.Debug("slow worker batch", "events", s.Events, "wait", s.Wait, "hold", s.Duration)
			}
		}}))
		if err := a.debugTimes(db); err != nil {
			Close(db)
			return nil, err
		}
	}
	worker, err := indexer.Start(ctx, db, wopts...)
	if err != nil {
		Close(db)
		return nil, err
	}
	wMu.Lock()
	w = worker
	wMu.Unlock()
	a.worker = worker
	// Documents of another seed than the loaded ones, so that KNN
	// self-hits of the loaded rows stay unambiguous.
	g := synth.New(3, synth.DefaultVocab)
	docs := make([]Article, 2000)
	for i := range docs {
		docs[i] = Article{Title: g.Title(), Body: g.Text(BodyWords), Embedding: g.Vector(Dim)}
	}
	interval := time.Second / time.Duration(rate)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		next := time.Now()
		for i := 0; ; i++ {
			select {
			case <-a.stop:
				return
			default:
			}
			next = next.Add(interval)
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
			}
			a.mu.Lock()
			paused := a.paused
			a.mu.Unlock()
			if paused {
				continue
			}
			d := docs[i%len(docs)]
			d.ID = 0
			a.started, a.committed, a.last = time.Now(), time.Time{}, appWrite{}
			err := db.WithContext(ctx).Create(&d).Error
			a.mu.Lock()
			w := a.last
			if !a.committed.IsZero() {
				w.post = time.Since(a.committed)
			}
			w.due, w.lat, w.err = next, time.Since(next), err != nil
			a.writes = append(a.writes, w)
			a.mu.Unlock()
		}
	}()
	return a, nil
}

// pause stops (true) or resumes (false) the writer's writes.
func (a *app) pause(on bool) {
	a.mu.Lock()
	a.paused = on
	a.mu.Unlock()
}

// window returns the writes due in [from, to].
func (a *app) window(from, to time.Time) window {
	a.mu.Lock()
	defer a.mu.Unlock()
	var w window
	for _, x := range a.writes {
		if x.due.Before(from) || x.due.After(to) {
			continue
		}
		if x.err {
			w.errors++
		}
		w.lat = append(w.lat, x.lat.Seconds()*1e3)
	}
	return w
}

func (a *app) close() {
	close(a.stop)
	a.wg.Wait()
	a.worker.Close()
	Close(a.db)
}

// String formats the report as the table docs/PERFORMANCE.md records.
func (r *OnlineRebuildReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "online rebuild of %d rows while the application writes %d rows/s (prepared in %.0f s)\n\n", r.Rows, r.Rate, r.PrepSecs)
	fmt.Fprintf(&b, "%-58s %s\n", "figure", "value")
	row := func(k, v string, a ...any) { fmt.Fprintf(&b, "%-58s %s\n", k, fmt.Sprintf(v, a...)) }
	row("offline rebuild (one tx, no writer): wall", "%.1f s (%.0f rows/s), peak RSS %.0f MiB", r.OfflineSecs, float64(r.Rows)/r.OfflineSecs, r.OfflineRSS)
	if r.OfflineWrites > 0 {
		row("  application writes due during it", "%d, errors %d, p99 %.0f ms, max %.0f ms", r.OfflineWrites, r.OfflineErrors, r.OfflineP99, r.OfflineMax)
	}
	row("online rebuild: wall", "%.1f s (%.0f rows/s), peak RSS %.0f MiB", r.OnlineSecs, float64(r.Rows)/r.OnlineSecs, r.OnlineRSS)
	row("online throughput ÷ offline (target ≥ 0.7)", "%.2f", r.Ratio)
	row("application writes with no rebuild: latency p50 / p99 / max", "%.1f / %.1f / %.1f ms", r.BaseP50, r.BaseP99, r.BaseMax)
	row("application writes due during the online rebuild", "%d", r.Writes)
	row("  errors returned to the application (target 0)", "%d", r.Errors)
	row("  latency from due time p50", "%.1f ms", r.P50)
	row("  latency from due time p99 (target ≤ 25 ms)", "%.1f ms", r.P99)
	row("  latency from due time max (target ≤ 250 ms)", "%.1f ms", r.MaxLat)
	row("after: source rows / vec0 rows / FTS5 documents", "%d / %d / %d", r.SourceRows, r.VecRows, r.FTSRows)
	row("after: FTS5 integrity-check", "ok")
	row("after: KNN self-hits of sampled loaded rows", "%d of %d", r.SelfHits, r.Sampled)
	return b.String()
}

// CPUModel returns the CPU model name from /proc/cpuinfo ("unknown"
// elsewhere), for the reports.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// startCPUProfile starts a CPU profile of this process into path (none
// when path is empty) and returns what stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
