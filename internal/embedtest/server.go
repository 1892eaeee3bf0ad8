// Package embedtest is a fake embedding service for tests: a real
// in-process HTTP server (httptest) that speaks the OpenAI-compatible API
// (POST {base}/v1/embeddings) and Ollama's (POST /api/embed), computes
// vectors with a function the test gives (so that tests know every exact
// vector), and injects faults: HTTP statuses with Retry-After, slow answers
// (client timeouts), vectors of the wrong dimension or with NaN, and a
// service that goes away (connections refused) for a while. It is a
// foundation: it imports no product package.
package embedtest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the server does to one request. The zero Fault answers
// normally.
type Fault struct {
	Status     int           // answer this HTTP status instead of embeddings
	RetryAfter string        // Retry-After header sent with Status
	Body       string        // body sent with Status (default {"error":{"message":"injected"}})
	Sleep      time.Duration // wait this long before answering (a client timeout)
	WrongDim   string        // the text whose vector gets one element too many
	NaN        string        // the text whose vector holds a NaN literal
}

// Server is a fake embedding service.
type Server struct {
	vec     func(string) []float32
	latency time.Duration

	mu    sync.Mutex
	fault func(n int64, texts []string) Fault
	srv   *httptest.Server
	addr  string
	texts int64
	down  bool

	requests atomic.Int64
	inflight atomic.Int64
	maxIn    atomic.Int64
}

// New starts a server whose vectors are vec(text), answering each request
// after latency. Close it when done.
func New(vec func(string) []float32, latency time.Duration) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{vec: vec, latency: latency, addr: l.Addr().String()}
	s.start(l)
	return s, nil
}

func (s *Server) start(l net.Listener) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	s.mu.Lock()
	s.srv, s.down = srv, false
	s.mu.Unlock()
}

// URL returns the root URL (the same across GoAway): the Ollama base URL;
// the OpenAI-compatible base URL is URL()+"/v1".
func (s *Server) URL() string { return "http://" + s.addr }

// SetFault sets the function that decides the fault of request n (1-based,
// counting every request); nil: none.
func (s *Server) SetFault(f func(n int64, texts []string) Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Requests returns the number of requests received.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Texts returns the number of texts received.
func (s *Server) Texts() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.texts
}

// MaxInFlight returns the most requests that were in flight at once.
func (s *Server) MaxInFlight() int64 { return s.maxIn.Load() }

// GoAway closes the listener and every connection (clients see refused
// connections) for d, then listens on the same address again. It returns
// at once.
func (s *Server) GoAway(d time.Duration) {
	s.mu.Lock()
	srv := s.srv
	s.srv, s.down = nil, true
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	go func() {
		time.Sleep(d)
		for range 200 { // the port may linger briefly
			l, err := net.Listen("tcp", s.addr)
			if err == nil {
				s.start(l)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

// Close stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	in := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxIn.Load()
		if in <= m || s.maxIn.CompareAndSwap(m, in) {
			break
		}
	}
	var body struct {
		Input any `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	var texts []string
	switch x := body.Input.(type) {
	case string:
		texts = []string{x}
	case []any:
		for _, e := range x {
			t, _ := e.(string)
			texts = append(texts, t)
		}
	}
	s.mu.Lock()
	s.texts += int64(len(texts))
	f := s.fault
	s.mu.Unlock()
	var ft Fault
	if f != nil {
		ft = f(n, texts)
	}
	if d := s.latency + ft.Sleep; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if ft.Status != 0 {
		if ft.RetryAfter != "" {
			w.Header().Set("Retry-After", ft.RetryAfter)
		}
		if ft.Body == "" {
			ft.Body = `{"error":{"message":"injected"}}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ft.Status)
		_, _ = w.Write([]byte(ft.Body))
		return
	}
	vecs := make([]string, len(texts))
	for i, t := range texts {
		v := s.vec(t)
		if ft.WrongDim != "" && t == ft.WrongDim {
			v = append(v, 0.5)
		}
		parts := make([]string, len(v))
		for j, x := range v {
			parts[j] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		if ft.NaN != "" && t == ft.NaN && len(parts) > 0 {
			parts[len(parts)/2] = "NaN"
		}
		vecs[i] = "[" + strings.Join(parts, ",") + "]"
	}
	var b strings.Builder
	switch r.URL.Path {
	case "/v1/embeddings":
		b.WriteString(`{"object":"list","data":[`)
		for i := range texts {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"object":"embedding","index":` + strconv.Itoa(i) + `,"embedding":` + vecs[i] + `}`)
		}
		b.WriteString(`],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)
	case "/api/embed":
		b.WriteString(`{"model":"m","embeddings":[` + strings.Join(vecs, ",") + `]}`)
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(b.String()))
}
