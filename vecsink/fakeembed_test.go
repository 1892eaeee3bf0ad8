package vecsink_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

// fault is what the fake embedding service does to one request.
type fault struct {
	status     int    // answer this status instead of embeddings
	retryAfter string // Retry-After header with status
	body       string // body with status (default {"error":{"message":"injected"}})
	sleep      time.Duration
	wrongDim   string // the text whose vector gets dim+1 elements
	nan        string // the text whose vector holds a NaN literal
	drop       string // the text whose embedding is left out of the answer
}

// fakeEmbed is a real HTTP server speaking the OpenAI-compatible API
// (POST /v1/embeddings) and Ollama's (POST /api/embed). It embeds with
// HashEmbedder(dim), so tests know every exact vector, and injects faults.
type fakeEmbed struct {
	t       *testing.T
	dim     int
	latency time.Duration
	// fault decides the fault of request n (1-based); nil: none.
	fault func(n int64, texts []string) fault

	mu       sync.Mutex
	srv      *httptest.Server
	addr     string
	batches  [][]string
	auth     []string
	bodies   []map[string]any
	requests atomic.Int64
	inflight atomic.Int64
	maxIn    atomic.Int64
}

func newFakeEmbed(t *testing.T, dim int) *fakeEmbed {
	t.Helper()
	f := &fakeEmbed{t: t, dim: dim}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.addr = l.Addr().String()
	f.start(l)
	t.Cleanup(func() {
		// Close outside f.mu: Close waits for the handlers in flight, which
		// take f.mu to record their request.
		f.mu.Lock()
		srv := f.srv
		f.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
	})
	return f
}

func (f *fakeEmbed) start(l net.Listener) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
}

// URL returns the server's root URL; it stays the same across goAway.
func (f *fakeEmbed) URL() string { return "http://" + f.addr }

// goAway closes the listener and every connection for d, then listens on
// the same address again.
func (f *fakeEmbed) goAway(d time.Duration) {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	srv.Close()
	go func() {
		time.Sleep(d)
		var l net.Listener
		var err error
		for range 50 { // the port may linger briefly
			if l, err = net.Listen("tcp", f.addr); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			f.t.Errorf("fake embed: listen again on %s: %v", f.addr, err)
			return
		}
		f.start(l)
	}()
}

func (f *fakeEmbed) want(texts ...string) [][]float32 {
	v, err := vecsink.HashEmbedder(f.dim).Embed(context.Background(), texts)
	require.NoError(f.t, err)
	return v
}

func (f *fakeEmbed) serve(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	in := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxIn.Load()
		if in <= m || f.maxIn.CompareAndSwap(m, in) {
			break
		}
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	var texts []string
	inputs, _ := body["input"].([]any)
	for _, x := range inputs {
		s, _ := x.(string)
		texts = append(texts, s)
	}
	f.mu.Lock()
	f.batches = append(f.batches, texts)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()

	var ft fault
	if f.fault != nil {
		ft = f.fault(n, texts)
	}
	if d := f.latency + ft.sleep; d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if ft.status != 0 {
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		if ft.body == "" {
			ft.body = `{"error":{"message":"injected"}}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ft.status)
		_, _ = w.Write([]byte(ft.body))
		return
	}
	vecs := make([]string, len(texts))
	for i, t := range texts {
		v := f.want(t)[0]
		if ft.wrongDim != "" && t == ft.wrongDim {
			v = append(v, 0.5)
		}
		parts := make([]string, len(v))
		for j, x := range v {
			parts[j] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		if ft.nan != "" && t == ft.nan {
			parts[len(parts)/2] = "NaN" // what Python's json.dumps writes
		}
		vecs[i] = "[" + strings.Join(parts, ",") + "]"
	}
	var b strings.Builder
	switch r.URL.Path {
	case "/v1/embeddings":
		// Items in reverse order: clients must place them by index.
		b.WriteString(`{"object":"list","data":[`)
		first := true
		for i := len(texts) - 1; i >= 0; i-- {
			if ft.drop != "" && texts[i] == ft.drop {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(`{"object":"embedding","index":` + strconv.Itoa(i) + `,"embedding":` + vecs[i] + `}`)
		}
		b.WriteString(`],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)
	case "/api/embed":
		b.WriteString(`{"model":"m","embeddings":[`)
		first := true
		for i := range texts {
			if ft.drop != "" && texts[i] == ft.drop {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(vecs[i])
		}
		b.WriteString(`]}`)
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(b.String()))
}

func (f *fakeEmbed) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, len(f.batches))
	for i, b := range f.batches {
		out[i] = len(b)
	}
	return out
}

// provider builds an embedder of the given API against f.
type provider struct {
	name string
	make func(f *fakeEmbed, opts ...vecsink.EmbedderOption) (*vecsink.HTTPEmbedder, error)
}

var providers = []provider{
	{"openai", func(f *fakeEmbed, opts ...vecsink.EmbedderOption) (*vecsink.HTTPEmbedder, error) {
		return vecsink.NewOpenAIEmbedder(f.URL()+"/v1", "m", opts...)
	}},
	{"ollama", func(f *fakeEmbed, opts ...vecsink.EmbedderOption) (*vecsink.HTTPEmbedder, error) {
		return vecsink.NewOllamaEmbedder(f.URL(), "m", opts...)
	}},
}

func decodeJSON(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
