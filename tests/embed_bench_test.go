package tests

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/embedtest"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Issue 15's numbers: embedding throughput of the indexer end to end
// (queue, read texts, embed, apply the vectors) against a mock service
// with a fixed latency per request, as a ratio to what the configured
// concurrency allows; and the application's write latency while the
// indexer embeds, against the same writes with no indexer running.

const (
	benchBatch   = 32
	benchConc    = 4
	benchLatency = 50 * time.Millisecond
)

func benchService(b *testing.B) *embedtest.Server {
	b.Helper()
	srv, err := embedtest.New(func(s string) []float32 {
		v, _ := vecsink.HashEmbedder(embDim).Embed(context.Background(), []string{s})
		return v[0]
	}, benchLatency)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	return srv
}

func benchEmbedder(b *testing.B, srv *embedtest.Server) vecsink.Embedder {
	b.Helper()
	c, err := vecsink.NewOpenAIEmbedder(srv.URL()+"/v1", "m", vecsink.WithDimensions(embDim))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// embLean is the throughput benchmark's model: a derived vector and no FTS
// sidecar, so that the measure is the embedding pipeline's.
type embLean struct {
	ID        uint
	Text      string
	Embedding vecsink.Embedding `vec:"dim=8;metric=cosine;from=Text"`
}

// BenchmarkEmbedThroughput: each iteration writes 10240 rows and drains
// them (applying the inserts, embedding 320 requests of 32 texts with 4 in
// flight, applying the vectors). "ratio" is texts/s over
// concurrency*batch/latency (2560/s): target >= 0.9.
func BenchmarkEmbedThroughput(b *testing.B) {
	const rows = 10240
	srv := benchService(b)
	var total time.Duration
	var texts int64
	ctx := context.Background()
	path := testdb.Path(b)
	db := embOpen(b, path)
	if err := gormplugin.Migrate(db, &embLean{}); err != nil {
		b.Fatal(err)
	}
	// Retention off: Drain's final compaction is not embedding work.
	ix, err := indexer.New(db, indexer.WithEmbedder(benchEmbedder(b, srv), vecsink.WithBatchSize(benchBatch), vecsink.WithConcurrency(benchConc)), indexer.WithRetention(-1))
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		batch := make([]embLean, rows)
		for j := range batch {
			batch[j] = embLean{Text: fmt.Sprintf("iteration %d row %d benchmark text", i, j)}
		}
		if err := db.CreateInBatches(batch, 1000).Error; err != nil {
			b.Fatal(err)
		}
		before, _ := ix.EmbedStatus()
		b.StartTimer()
		t0 := time.Now()
		if _, err := ix.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		after, _ := ix.EmbedStatus()
		texts += after.Texts - before.Texts
	}
	perSec := float64(texts) / total.Seconds()
	limit := float64(benchConc*benchBatch) / benchLatency.Seconds()
	es, _ := ix.EmbedStatus()
	b.ReportMetric(float64(es.MeanLatency().Microseconds())/1000, "ms/request")
	b.ReportMetric(perSec, "texts/s")
	b.ReportMetric(perSec/limit, "ratio")
}

// embPlain is embArticle with a vector the application supplies.
type embPlain struct {
	ID        uint
	Title     string `fts5:""`
	Body      string `fts5:""`
	Views     int
	Embedding vecsink.Embedding `vec:"dim=8;metric=cosine"`
}

// BenchmarkEmbedWriteLatency measures single-row writes through gorm (one
// transaction each) with no indexer ("idle"), while a worker indexes a
// backlog of rows whose vectors the application supplied ("indexing", the
// cost of indexing itself), and while a worker embeds a backlog of the same
// size against the slow mock service and indexes it ("embedding"); it
// reports p50, p99 and max in microseconds.
func BenchmarkEmbedWriteLatency(b *testing.B) {
	for _, mode := range []string{"idle", "indexing", "embedding"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			db := embOpen(b, testdb.Path(b))
			if mode == "indexing" {
				if err := gormplugin.Migrate(db, &embPlain{}); err != nil {
					b.Fatal(err)
				}
				backlog := make([]embPlain, 20000)
				for j := range backlog {
					v, _ := vecsink.HashEmbedder(embDim).Embed(ctx, []string{fmt.Sprintf("backlog %d", j)})
					backlog[j] = embPlain{Title: fmt.Sprintf("backlog %d", j), Body: "text", Embedding: v[0]}
				}
				if err := db.CreateInBatches(backlog, 1000).Error; err != nil {
					b.Fatal(err)
				}
				w, err := indexer.Start(ctx, db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)), indexer.WithPollInterval(10*time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
			}
			if mode == "embedding" {
				srv := benchService(b)
				backlog := make([]embArticle, 20000)
				for j := range backlog {
					backlog[j] = embArticle{Title: fmt.Sprintf("backlog %d", j), Body: "text"}
				}
				if err := db.CreateInBatches(backlog, 1000).Error; err != nil {
					b.Fatal(err)
				}
				w, err := indexer.Start(ctx, db, indexer.WithEmbedder(benchEmbedder(b, srv), vecsink.WithBatchSize(benchBatch), vecsink.WithConcurrency(benchConc)),
					indexer.WithPollInterval(10*time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				// Let the first round start.
				for {
					st, _ := w.Indexer().EmbedStatus()
					if st.Requests > 0 {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				if err := db.Create(&embArticle{Title: fmt.Sprintf("write %d", i), Body: "latency probe"}).Error; err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				b.StopTimer()
				time.Sleep(2 * time.Millisecond) // a paced application, not a saturating one
				b.StartTimer()
			}
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) }
			b.ReportMetric(q(0.5), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		})
	}
}

// BenchmarkEmbedRebuild (issue 16: "the same mechanism serves
// re-embedding"): n rows of embArticle (two FTS5 fields, a derived vector)
// embedded by one model are rebuilt while the application writes 200
// rows/s through the plugin with its worker running (which embeds what is
// queued): with the same model ("same-model": a repair or a tokenizer
// change; every vector is kept) and after the model changed ("new-model",
// flipEmbedder: every vector is embedded again and applied). Once offline
// (WithOffline: one write transaction, how derived tables were rebuilt
// before 2026-12-03) and once online, each on a fresh copy of the same
// data; the window of each runs from the Rebuild call until every vector
// is the model's. It reports the application's write latency (from each
// write's due time) in both windows, the errors, and online ÷ offline wall
// time. OI_BENCH_DEBUG=1 splits the window at the Rebuild's return and
// lists the worker's apply transactions that held the lock over 25 ms.
func BenchmarkEmbedRebuild(b *testing.B) {
	for _, mode := range []string{"same-model", "new-model"} {
		b.Run(mode, func(b *testing.B) {
			var model vecsink.Embedder = vecsink.HashEmbedder(embDim)
			if mode == "new-model" {
				model = flipEmbedder{}
			}
			benchEmbedRebuild(b, model, mode == "new-model")
		})
	}
}

func benchEmbedRebuild(b *testing.B, model vecsink.Embedder, reembed bool) {
	const n = 50000
	ctx := context.Background()
	seed := testdb.Path(b)
	{
		db := embOpen(b, seed)
		ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)))
		if err != nil {
			b.Fatal(err)
		}
		batch := make([]embArticle, n)
		for j := range batch {
			batch[j] = embArticle{Title: fmt.Sprintf("title %d", j), Body: fmt.Sprintf("body of row %d with some words", j)}
		}
		if err := db.CreateInBatches(batch, 1000).Error; err != nil {
			b.Fatal(err)
		}
		if _, err := ix.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		ix.Close()
		sqlDB, _ := db.DB()
		if _, err := sqlDB.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		sqlDB.Close()
	}
	type result struct {
		secs            float64
		writes, errors  int
		p50, p99, maxMs float64
	}
	run := func(offline bool) result {
		path := testdb.Path(b)
		if err := copyFile(seed, path); err != nil {
			b.Fatal(err)
		}
		app := embOpen(b, path)
		var slowMu sync.Mutex
		var slow []string
		obs := indexer.Observer{Batch: func(s indexer.BatchStats) {
			if s.Duration > 25*time.Millisecond {
				slowMu.Lock()
				slow = append(slow, fmt.Sprintf("%s %d events held %v (waited %v)", time.Now().Format("05.000"), s.Events, s.Duration.Round(time.Millisecond), s.Wait.Round(time.Millisecond)))
				slowMu.Unlock()
			}
		}}
		w, err := indexer.Start(ctx, app, indexer.WithEmbedder(model), indexer.WithPollInterval(10*time.Millisecond), indexer.WithObserver(obs))
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		defer func() {
			if os.Getenv("OI_BENCH_DEBUG") != "" {
				b.Logf("offline=%v: worker batches over 25 ms: %d: %v", offline, len(slow), slow)
			}
		}()
		var mu sync.Mutex
		var lat []time.Duration
		var dues []time.Time
		errs := 0
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			const every = 5 * time.Millisecond // 200 rows/s
			due := time.Now()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				err := app.Create(&embArticle{Title: fmt.Sprintf("app %d", i), Body: "written during the rebuild"}).Error
				mu.Lock()
				lat = append(lat, time.Since(due))
				dues = append(dues, due)
				if err != nil {
					errs++
				}
				mu.Unlock()
				due = due.Add(every)
			}
		}()
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		lat, dues, errs = lat[:0], dues[:0], 0
		mu.Unlock()
		rb := embOpen(b, path)
		opts := []indexer.Option{indexer.WithEmbedder(model)}
		if offline {
			opts = append(opts, indexer.WithOffline())
		}
		ix, err := indexer.New(rb, opts...)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := ix.Rebuild(ctx, "emb_articles"); err != nil {
			b.Fatal(err)
		}
		ix.Close()
		rebuilt := time.Now()
		// Until every row has the new model's vector: the queue is empty
		// and the worker has applied what the rounds wrote.
		sqlDB, _ := app.DB()
		for {
			var queued int
			if err := sqlDB.QueryRow(`SELECT count(*) FROM oi_embed_queue`).Scan(&queued); err != nil {
				b.Fatal(err)
			}
			if queued == 0 {
				if err := w.Sync(ctx); err != nil {
					b.Fatal(err)
				}
				if err := sqlDB.QueryRow(`SELECT count(*) FROM oi_embed_queue`).Scan(&queued); err != nil {
					b.Fatal(err)
				}
				if queued == 0 {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		secs := time.Since(t0).Seconds()
		close(stop)
		<-done
		st, _ := w.Indexer().EmbedStatus()
		if reembed && st.Texts < n {
			b.Fatalf("only %d texts embedded again of %d", st.Texts, n)
		}
		if !reembed && st.Texts > int64(len(lat)+100) {
			b.Fatalf("%d texts embedded: the rebuild kept every vector, only the application's new rows need one", st.Texts)
		}
		mu.Lock()
		defer mu.Unlock()
		if os.Getenv("OI_BENCH_DEBUG") != "" {
			var in, after []time.Duration
			for i, d := range dues {
				if d.Before(rebuilt) {
					in = append(in, lat[i])
				} else {
					after = append(after, lat[i])
				}
			}
			slices.Sort(in)
			slices.Sort(after)
			b.Logf("offline=%v rebuild %.2fs: %d writes p99 %v max %v; re-embedding %.2fs: %d writes p50 %v p99 %v max %v", offline,
				rebuilt.Sub(t0).Seconds(), len(in), in[len(in)*99/100], in[len(in)-1],
				time.Since(rebuilt).Seconds(), len(after), after[len(after)/2], after[len(after)*99/100], after[len(after)-1])
		}
		slices.Sort(lat)
		q := func(p float64) float64 {
			return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
		}
		return result{secs: secs, writes: len(lat), errors: errs, p50: q(0.5), p99: q(0.99), maxMs: q(1)}
	}
	var off, on result
	for b.Loop() {
		off = run(true)
		on = run(false)
	}
	b.ReportMetric(off.secs, "offline-s")
	b.ReportMetric(on.secs, "online-s")
	b.ReportMetric(on.secs/off.secs, "online/offline")
	b.ReportMetric(off.p99, "offline-p99-ms")
	b.ReportMetric(off.maxMs, "offline-max-ms")
	b.ReportMetric(on.p50, "online-p50-ms")
	b.ReportMetric(on.p99, "online-p99-ms")
	b.ReportMetric(on.maxMs, "online-max-ms")
	b.ReportMetric(float64(off.errors+on.errors), "errors")
	b.Logf("offline: %d writes, %d errors; online: %d writes, %d errors", off.writes, off.errors, on.writes, on.errors)
}

// copyFile copies the database file src (checkpointed and closed: no WAL)
// to dst.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}
