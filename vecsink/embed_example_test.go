package vecsink_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/outboxindexer/outboxindexer/vecsink"
)

func ExampleHashEmbedder() {
	var e vecsink.Embedder = vecsink.HashEmbedder(8)
	vecs, err := e.Embed(context.Background(), []string{"ocean sailing", "Ocean  SAILING"})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(vecs), len(vecs[0]))
	fmt.Printf("%.3f\n", vecs[0])
	fmt.Println("same words, same vector:", fmt.Sprint(vecs[0]) == fmt.Sprint(vecs[1]))
	// Output:
	// 2 8
	// [0.000 0.632 0.000 0.316 -0.632 0.000 0.000 -0.316]
	// same words, same vector: true
}

// A BatchEmbedder around an OpenAI-compatible client: the service below
// answers 429 with Retry-After to the first request, and the text "bad"
// with 400; the batch is retried, then bisected so that only "bad" fails.
func ExampleNewOpenAIEmbedder() {
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++ // the BatchEmbedder below sends one request at a time
		var req struct{ Input []string }
		if err := decodeJSON(r, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if requests == 1 {
			w.Header().Set("Retry-After", "0.05")
			http.Error(w, `{"error":{"message":"rate limited"}}`, http.StatusTooManyRequests)
			return
		}
		for _, s := range req.Input {
			if s == "bad" {
				http.Error(w, `{"error":{"message":"input rejected"}}`, http.StatusBadRequest)
				return
			}
		}
		fmt.Fprint(w, `{"data":[`)
		for i, s := range req.Input {
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, `{"index":%d,"embedding":[%d,1]}`, i, len(s))
		}
		fmt.Fprint(w, `]}`)
	}))
	defer srv.Close()

	client, err := vecsink.NewOpenAIEmbedder(srv.URL+"/v1", "text-embedding-3-small",
		vecsink.WithAPIKey("sk-example"), vecsink.WithDimensions(2))
	if err != nil {
		panic(err)
	}
	stats := &vecsink.EmbedStats{}
	e, err := vecsink.NewBatchEmbedder(client,
		vecsink.WithBatchSize(4), vecsink.WithConcurrency(1), vecsink.WithRateLimit(100, 1),
		vecsink.WithRetryBackoff(10*time.Millisecond, time.Second), vecsink.WithObserver(stats))
	if err != nil {
		panic(err)
	}
	vecs, err := e.Embed(context.Background(), []string{"a", "bb", "bad", "dddd"})
	fmt.Println(vecs)
	fmt.Println(err)
	s := stats.Snapshot()
	fmt.Println("requests:", s.Requests, "transient:", s.TransientErrs, "permanent:", s.PermanentErrs)
	// Output:
	// [[1 1] [2 1] [] [4 1]]
	// vecsink: openai: permanent embedding failure of text 2: HTTP 400: input rejected
	// requests: 6 transient: 1 permanent: 3
}
