package tests

import (
	"context"
	"fmt"
	"slices"
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
