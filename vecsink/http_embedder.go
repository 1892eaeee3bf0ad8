package vecsink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/embedhttp"
)

// HTTPEmbedder is an [Embedder] that calls an embedding service over HTTP:
// the OpenAI-compatible API ([NewOpenAIEmbedder]) or Ollama's
// ([NewOllamaEmbedder]). It sends every Embed call as one request and does
// not retry: wrap it in a [BatchEmbedder] for batching, concurrency, rate
// limits and retries. It is safe for concurrent use.
type HTTPEmbedder struct {
	provider string
	endpoint string
	model    string
	dim      int
	http     embedhttp.Client
	call     func(ctx context.Context, h *HTTPEmbedder, texts []string) ([]embedhttp.Vector, []bool, error)
}

func newHTTPEmbedder(provider, baseURL, path, model string, opts []EmbedderOption) (*HTTPEmbedder, error) {
	c := embedderConfig{timeout: DefaultEmbedRequestTimeout}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if strings.TrimSpace(model) == "" {
		return nil, fmt.Errorf("vecsink: %s embedder: model: must not be empty: %w", provider, ErrInvalidOption)
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("vecsink: %s embedder: base URL %q: want http(s)://host[:port][/path]: %w", provider, baseURL, ErrInvalidOption)
	}
	if c.dim < 0 {
		return nil, fmt.Errorf("vecsink: %s embedder: WithDimensions(%d): must not be negative: %w", provider, c.dim, ErrInvalidOption)
	}
	if c.timeout < 0 {
		return nil, fmt.Errorf("vecsink: %s embedder: WithRequestTimeout(%s): must not be negative: %w", provider, c.timeout, ErrInvalidOption)
	}
	key := os.Getenv(APIKeyEnv)
	if c.apiKey != nil {
		key = *c.apiKey
	}
	hc := c.client
	if hc == nil {
		hc = embedhttp.NewHTTPClient()
	}
	return &HTTPEmbedder{
		provider: provider,
		endpoint: strings.TrimRight(baseURL, "/") + path,
		model:    model,
		dim:      c.dim,
		http:     embedhttp.Client{HTTP: hc, APIKey: key, Timeout: c.timeout},
	}, nil
}

// Provider returns "openai" or "ollama".
func (h *HTTPEmbedder) Provider() string { return h.provider }

// Endpoint returns the URL requests are posted to.
func (h *HTTPEmbedder) Endpoint() string { return h.endpoint }

// Model returns the model name sent with every request.
func (h *HTTPEmbedder) Model() string { return h.model }

// Embed posts texts in one request and validates the answer: one vector per
// text, of the configured dimension, finite. See [Embedder] for what it
// returns on failure.
func (h *HTTPEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return [][]float32{}, nil
	}
	vecs, present, err := h.call(ctx, h, texts)
	if err != nil {
		return nil, h.classify(ctx, err)
	}
	out := make([][]float32, len(texts))
	var fails []*EmbedError
	for i := range texts {
		if msg := h.check(vecs[i], present[i]); msg != "" {
			fails = append(fails, &EmbedError{Kind: EmbedPermanent, Index: i, Provider: h.provider, Message: msg})
			continue
		}
		out[i] = []float32(vecs[i])
	}
	if len(fails) > 0 {
		return out, &PartialError{Failures: fails}
	}
	return out, nil
}

// check returns why v is not acceptable, or "".
func (h *HTTPEmbedder) check(v embedhttp.Vector, present bool) string {
	switch {
	case !present:
		return "the answer has no embedding for this text"
	case len(v) == 0:
		return "the answer has an empty embedding for this text"
	case h.dim > 0 && len(v) != h.dim:
		return fmt.Sprintf("embedding has %d dimensions, want %d", len(v), h.dim)
	}
	for j, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Sprintf("embedding element %d is %v", j, x)
		}
	}
	return ""
}

// errMalformed marks an answer whose shape is wrong as a whole.
type errMalformed struct{ msg string }

func (e errMalformed) Error() string { return e.msg }

// classify turns an error of the HTTP layer into an *EmbedError, or wraps
// the caller's context error.
func (h *HTTPEmbedder) classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("vecsink: %s: %w", h.provider, err)
	}
	e := &EmbedError{Index: -1, Provider: h.provider}
	var se *embedhttp.StatusError
	var te *embedhttp.TransportError
	var me errMalformed
	switch {
	case errors.As(err, &se):
		e.StatusCode, e.Message, e.RetryAfter = se.StatusCode, se.Message, se.RetryAfter
		e.Kind = statusKind(se.StatusCode)
	case errors.As(err, &te):
		e.Kind, e.Message, e.Err = EmbedTransient, te.Message, te
	case errors.As(err, &me):
		// One vector per text is the whole contract: an answer without
		// it cannot be trusted for any text of the request. Bisecting
		// finds the text that causes it, if one does.
		e.Kind, e.Message = EmbedPermanent, me.msg
	default:
		// An undecodable 2xx answer is the service's fault, not the
		// texts': retry.
		e.Kind, e.Message = EmbedTransient, embedhttp.Redact(err.Error(), h.http.APIKey)
	}
	return e
}

// statusKind maps an HTTP status of a failed request to the kind of failure.
func statusKind(code int) EmbedErrorKind {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return EmbedTransient
	case code == http.StatusUnauthorized, code == http.StatusForbidden,
		code == http.StatusNotFound, code == http.StatusMethodNotAllowed:
		return EmbedRejected
	default:
		return EmbedPermanent
	}
}
