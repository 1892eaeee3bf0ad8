package vecsink

import (
	"net/http"
	"time"
)

// APIKeyEnv is the environment variable the HTTP embedders read their API key
// from when [WithAPIKey] is not given.
const APIKeyEnv = "INDEXER_EMBED_API_KEY"

// DefaultEmbedRequestTimeout bounds one HTTP embedding request unless
// [WithRequestTimeout] says otherwise.
const DefaultEmbedRequestTimeout = 60 * time.Second

// EmbedderOption configures an HTTP embedder ([NewOpenAIEmbedder],
// [NewOllamaEmbedder]).
type EmbedderOption func(*embedderConfig)

type embedderConfig struct {
	apiKey  *string
	dim     int
	client  *http.Client
	timeout time.Duration
}

// WithAPIKey sets the API key, sent as "Authorization: Bearer KEY". Without
// it the key comes from the environment variable [APIKeyEnv] (read when the
// embedder is built); with neither, and with WithAPIKey(""), no
// Authorization header is sent (local servers need none). The key never
// appears in an error or a log message.
func WithAPIKey(key string) EmbedderOption {
	return func(c *embedderConfig) { c.apiKey = &key }
}

// WithDimensions makes the embedder check that every vector has dim
// elements; a vector of another length fails its text with
// [ErrEmbedPermanent]. 0 (the default) checks only that vectors are not
// empty.
func WithDimensions(dim int) EmbedderOption {
	return func(c *embedderConfig) { c.dim = dim }
}

// WithHTTPClient sets the HTTP client. The default keeps up to 64 idle
// connections per host, enough for concurrent batches.
func WithHTTPClient(hc *http.Client) EmbedderOption {
	return func(c *embedderConfig) { c.client = hc }
}

// WithRequestTimeout bounds each HTTP request (default
// [DefaultEmbedRequestTimeout]). A request that runs into it fails with
// [ErrEmbedTransient]; one whose caller's context ends returns that
// context's error instead.
func WithRequestTimeout(d time.Duration) EmbedderOption {
	return func(c *embedderConfig) { c.timeout = d }
}
