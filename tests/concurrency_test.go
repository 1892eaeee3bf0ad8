package tests

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
)

// TestConcurrencyWritersWorkerAndBinary runs several application goroutines
// writing through gorm and the capture plugin, an in-process worker
// (indexer.Start) and the `indexer run` binary, all on one database file
// opened with the recommended DSN (engine.DSN). The lease is handed over
// between the worker and the binary several times while the writers run.
// No write may fail (in particular with SQLITE_BUSY or SQLITE_LOCKED), the
// history recorded by triggers must show a single applier per fencing token,
// and the final sidecars must equal the reference.
func TestConcurrencyWritersWorkerAndBinary(t *testing.T) {
	bins := reliab.Build(t)
	path := testdb.Path(t)
	db, sqlDB := reliab.PrepareIndexed(t, path)
	ctx := context.Background()
	reliab.InstallHistory(t, sqlDB)

	writers, phases, phase := 4, 4, 600*time.Millisecond
	if *relLong {
		writers, phases, phase = 6, 10, 3*time.Second
	}

	var lagMu sync.Mutex
	var lags []time.Duration
	var workerBatches []int64
	newWorker := func(i int) *indexer.Worker {
		obs := indexer.Observer{Batch: func(b indexer.BatchStats) {
			lagMu.Lock()
			lags = append(lags, b.Lag)
			workerBatches = append(workerBatches, b.Checkpoint)
			lagMu.Unlock()
		}}
		w, err := indexer.Start(ctx, db, indexer.WithHolder(fmt.Sprintf("worker-%d", i)), indexer.WithPollInterval(20*time.Millisecond),
			indexer.WithLease(indexer.DefaultLeaseName, 2*time.Second), indexer.WithObserver(obs))
		require.NoError(t, err)
		return w
	}
	startBinary := func(i int) (*relProc, string) {
		holder := fmt.Sprintf("binary-%d", i)
		p := relStart(t, bins, bins.Indexer, "run", "--db", path, "--holder", holder, "--poll-interval", "20ms", "--lease-ttl", "2s", "--log-every", "0")
		p.waitOutput(t, "indexer running")
		return p, holder
	}

	// Writers. They are stopped by a flag, not by cancelling their context:
	// a context cancelled while SQLite waits on the busy timeout surfaces as
	// "database is locked" or "interrupted" (see docs/RELIABILITY.md).
	var stopped atomic.Bool
	wctx, stopWriters := context.WithCancel(ctx)
	var steps atomic.Int64
	var errMu sync.Mutex
	var writeErrs []error
	var wg sync.WaitGroup
	start := time.Now()
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wl := reliab.NewWorkload(fmt.Sprintf("g%d", i), uint64(100+i))
			for !stopped.Load() {
				_, _, err := wl.Step(ctx, db)
				if err != nil {
					errMu.Lock()
					writeErrs = append(writeErrs, err)
					errMu.Unlock()
					continue
				}
				steps.Add(1)
			}
		}()
	}

	// Status sampler: the age of the oldest pending event, seen by a reader.
	var ages []time.Duration
	sampleDone := make(chan struct{})
	sampler, err := indexer.New(db, indexer.WithHolder("sampler"))
	require.NoError(t, err)
	go func() {
		defer close(sampleDone)
		tk := time.NewTicker(25 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tk.C:
				st, err := sampler.Status(wctx)
				if err == nil {
					ages = append(ages, st.OldestPendingAge)
				}
			}
		}
	}()

	// Hand the lease over between the worker and the binary.
	worker := newWorker(0)
	bin, binHolder := startBinary(0)
	holders := map[string]bool{}
	for p := range phases {
		time.Sleep(phase)
		if p%2 == 0 {
			require.NoError(t, worker.Close()) // releases the lease: the binary takes over
			relWaitApplier(t, sqlDB, binHolder)
			holders[binHolder] = true
			worker = newWorker(p + 1)
		} else {
			bin.signal(t, syscall.SIGTERM) // clean stop: the lease is released, the worker takes over
			require.Equal(t, 0, bin.wait(t), "indexer run after SIGTERM:\n%s", bin.out)
			relWaitApplier(t, sqlDB, fmt.Sprintf("worker-%d", p))
			holders[fmt.Sprintf("worker-%d", p)] = true
			bin, binHolder = startBinary(p + 1)
		}
	}
	stopped.Store(true)
	wg.Wait()
	stopWriters()
	elapsed := time.Since(start)
	<-sampleDone
	require.NoError(t, sampler.Close())

	for _, err := range writeErrs {
		if code, ok := engine.ErrorCode(err); ok && (code == engine.CodeBusy || code == engine.CodeLocked) {
			t.Errorf("SQLITE_BUSY/LOCKED reached the application: %v", err)
		}
	}
	require.Empty(t, writeErrs, "write errors")

	syncCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, worker.Sync(syncCtx))
	bin.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, bin.wait(t), "indexer run after SIGTERM:\n%s", bin.out)
	require.NoError(t, worker.Close())

	byHolder := reliab.CheckSingleApplier(t, sqlDB)
	for h := range holders {
		require.Positive(t, byHolder[h], "holder %s applied nothing while it held the lease", h)
	}
	// Every batch the in-process workers reported is in the history under a
	// worker holder.
	applies, _ := reliab.History(t, sqlDB)
	who := map[int64]string{}
	for _, a := range applies {
		who[a.Position] = a.Holder
	}
	for _, cp := range workerBatches {
		require.True(t, strings.HasPrefix(who[cp], "worker-"), "worker batch to %d recorded for %q", cp, who[cp])
	}
	sum := reliab.Check(t, sqlDB)

	var head int64
	require.NoError(t, sqlDB.QueryRow(`SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'oi_events'`).Scan(&head))
	l50, l99, lmax := reliab.Percentiles(lags)
	a50, a99, amax := reliab.Percentiles(ages)
	_, leases := reliab.History(t, sqlDB)
	t.Logf("concurrency: %d writers for %v: %d transactions (%.0f tx/s), %d events (%.0f events/s); %d batches, by holder %s; %d lease changes",
		writers, elapsed.Round(time.Millisecond), steps.Load(), float64(steps.Load())/elapsed.Seconds(), head, float64(head)/elapsed.Seconds(),
		len(applies), reliab.Describe(byHolder), len(leases))
	t.Logf("concurrency: worker batch lag (newest event age at commit) p50 %v p99 %v max %v; oldest pending age sampled p50 %v p99 %v max %v",
		l50.Round(time.Millisecond), l99.Round(time.Millisecond), lmax.Round(time.Millisecond),
		a50.Round(time.Millisecond), a99.Round(time.Millisecond), amax.Round(time.Millisecond))
	t.Logf("concurrency: final state %+v", sum)
}

// relWaitApplier waits until holder holds a live lease and has committed a
// batch under it (the writers keep writing, so it soon has work).
func relWaitApplier(t *testing.T, db *sql.DB, holder string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM rel_applies a JOIN oi_lease l ON l.name = 'main' AND l.holder = a.holder AND l.token = a.token WHERE a.holder = ?`, holder).Scan(&n)
		return err == nil && n > 0
	}, time.Minute, 10*time.Millisecond, "%s never applied a batch under the lease", holder)
}

// TestConcurrencyDSNRequirements establishes, one ingredient at a time,
// why the recommended DSN (engine.DSN) has each of its parts: without
// _txlock=immediate a transaction that read first fails to upgrade with
// SQLITE_BUSY (the busy timeout cannot help: its snapshot is stale);
// without a busy timeout a writer fails at once while another writes;
// without WAL a writer cannot commit while a reader is open. With the
// recommended DSN the same interleavings succeed.
func TestConcurrencyDSNRequirements(t *testing.T) {
	t.Parallel()
	dsn := func(path string, p engine.Params) string {
		d, err := engine.DSNWith(path, p)
		require.NoError(t, err)
		return d
	}
	open := func(t *testing.T, d string) *gorm.DB {
		db, err := gorm.Open(engine.Dialector(d), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		t.Cleanup(func() {
			if s, err := db.DB(); err == nil {
				s.Close()
			}
		})
		require.NoError(t, db.Use(gormplugin.New()))
		require.NoError(t, gormplugin.Migrate(db, reliab.Models()...))
		require.NoError(t, db.Create(&reliab.Article{Title: "first", Body: "row"}).Error)
		return db
	}
	isBusy := func(err error) bool {
		code, ok := engine.ErrorCode(err)
		return ok && code == engine.CodeBusy
	}

	// Two read-then-write transactions that interleave (what the capture
	// plugin does for updates and deletes: it reads the affected keys first).
	readThenWrite := func(t *testing.T, db *gorm.DB, immediate bool) (errA, errB error) {
		read, bDone := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-read
			errB = db.Transaction(func(tx *gorm.DB) error {
				return tx.Model(&reliab.Article{ID: 1}).Update("body", "written by B").Error
			})
			close(bDone)
		}()
		errA = db.Transaction(func(tx *gorm.DB) error {
			var a reliab.Article
			if err := tx.First(&a, 1).Error; err != nil {
				return err
			}
			close(read)
			if immediate {
				time.Sleep(50 * time.Millisecond) // B is queued on BEGIN IMMEDIATE meanwhile
			} else {
				<-bDone // B commits while A holds its read snapshot
			}
			return tx.Model(&a).Update("title", "written by A").Error
		})
		wg.Wait()
		return errA, errB
	}
	t.Run("deferred transactions fail to upgrade", func(t *testing.T) {
		t.Parallel()
		db := open(t, dsn(testdb.Path(t), engine.Params{BusyTimeoutMS: 10000, JournalMode: "wal", TxLock: "deferred"}))
		errA, errB := readThenWrite(t, db, false)
		require.NoError(t, errB)
		require.True(t, isBusy(errA), "want SQLITE_BUSY despite the busy timeout, got %v", errA)
	})
	t.Run("immediate transactions queue", func(t *testing.T) {
		t.Parallel()
		path := testdb.Path(t)
		db := open(t, engine.DSN(path))
		errA, errB := readThenWrite(t, db, true)
		require.NoError(t, errA)
		require.NoError(t, errB)
		var a reliab.Article
		require.NoError(t, db.First(&a, 1).Error)
		require.Equal(t, "written by A", a.Title)
		require.Equal(t, "written by B", a.Body)
	})

	// A writer while another one holds the write lock.
	twoWriters := func(t *testing.T, db *gorm.DB) error {
		locked, bDone := make(chan struct{}), make(chan struct{})
		var errB error
		go func() {
			<-locked
			errB = db.Create(&reliab.Article{Title: "B"}).Error
			close(bDone)
		}()
		require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&reliab.Article{Title: "A"}).Error; err != nil {
				return err
			}
			close(locked)
			select {
			case <-bDone: // B failed at once
			case <-time.After(100 * time.Millisecond): // B waits on the busy timeout
			}
			return nil
		}))
		<-bDone
		return errB
	}
	t.Run("no busy timeout", func(t *testing.T) {
		t.Parallel()
		db := open(t, dsn(testdb.Path(t), engine.Params{BusyTimeoutMS: 0, JournalMode: "wal", TxLock: "immediate"}))
		err := twoWriters(t, db)
		require.True(t, isBusy(err), "want SQLITE_BUSY without a busy timeout, got %v", err)
	})
	t.Run("busy timeout", func(t *testing.T) {
		t.Parallel()
		db := open(t, engine.DSN(testdb.Path(t)))
		require.NoError(t, twoWriters(t, db))
	})

	// A writer while a reader has a statement open.
	readerOpen := func(t *testing.T, db *gorm.DB) error {
		sqlDB, err := db.DB()
		require.NoError(t, err)
		rows, err := sqlDB.Query(`SELECT id FROM articles`)
		require.NoError(t, err)
		require.True(t, rows.Next())
		err = db.Create(&reliab.Article{Title: "while reading"}).Error
		require.NoError(t, rows.Close())
		return err
	}
	t.Run("rollback journal blocks writers behind readers", func(t *testing.T) {
		t.Parallel()
		db := open(t, dsn(testdb.Path(t), engine.Params{BusyTimeoutMS: 300, JournalMode: "delete", TxLock: "immediate"}))
		err := readerOpen(t, db)
		require.True(t, isBusy(err), "want SQLITE_BUSY in rollback-journal mode, got %v", err)
	})
	t.Run("WAL lets writers commit while reading", func(t *testing.T) {
		t.Parallel()
		db := open(t, dsn(testdb.Path(t), engine.Params{BusyTimeoutMS: 300, JournalMode: "wal", TxLock: "immediate"}))
		require.NoError(t, readerOpen(t, db))
	})
}
