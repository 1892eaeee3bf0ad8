package vecsink_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/vecsink"
)

// BenchmarkEmbedThroughput measures a BatchEmbedder around the OpenAI client
// against a mock service that answers every request of 32 texts after a fixed
// 50 ms. The theoretical maximum is concurrency*32/0.05 texts/s; the
// "ratio" metric is the throughput reached over it (target >= 0.9).
func BenchmarkEmbedThroughput(b *testing.B) {
	const (
		batch   = 32
		latency = 50 * time.Millisecond
		dim     = 64
		rounds  = 4 // requests per worker per iteration
	)
	// The answer to any request of 32 texts, built once: the benchmark
	// measures the client, not the mock.
	var sb strings.Builder
	sb.WriteString(`{"data":[`)
	for i := range batch {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"index":%d,"embedding":[`, i)
		for j := range dim {
			if j > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "%.6f", float64(i*dim+j)/1e4)
		}
		sb.WriteString("]}")
	}
	sb.WriteString("]}")
	answer := []byte(sb.String())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer srv.Close()

	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			client, err := vecsink.NewOpenAIEmbedder(srv.URL+"/v1", "m", vecsink.WithDimensions(dim))
			if err != nil {
				b.Fatal(err)
			}
			e, err := vecsink.NewBatchEmbedder(client, vecsink.WithBatchSize(batch), vecsink.WithConcurrency(conc))
			if err != nil {
				b.Fatal(err)
			}
			texts := make([]string, conc*batch*rounds)
			for i := range texts {
				texts[i] = fmt.Sprintf("text %d", i)
			}
			ctx := context.Background()
			if _, err := e.Embed(ctx, texts[:conc*batch]); err != nil { // warm up connections
				b.Fatal(err)
			}
			start, n := time.Now(), 0
			for b.Loop() {
				n++
				vecs, err := e.Embed(ctx, texts)
				if err != nil {
					b.Fatal(err)
				}
				if len(vecs) != len(texts) || len(vecs[len(vecs)-1]) != dim {
					b.Fatalf("got %d vectors", len(vecs))
				}
			}
			elapsed := time.Since(start).Seconds()
			perSec := float64(n*len(texts)) / elapsed
			max := float64(conc*batch) / latency.Seconds()
			b.ReportMetric(perSec, "texts/s")
			b.ReportMetric(perSec/max, "ratio")
		})
	}
}
