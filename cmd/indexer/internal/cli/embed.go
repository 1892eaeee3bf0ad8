package cli

import (
	"flag"
	"fmt"
	"time"

	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Embedding APIs the --embed-api flag accepts.
const (
	EmbedAPIOpenAI = "openai"
	EmbedAPIOllama = "ollama"
)

// EmbedFlags are the flags that give `indexer run|drain|rebuild` the
// embedder of derived vectors (`vec:"…;from=…"`): the binary knows no Go
// types, so the client comes from flags and the API key from the
// environment (vecsink.APIKeyEnv), never from a flag (it would show in ps).
type EmbedFlags struct {
	API         string
	URL         string
	Model       string
	Batch       int
	Concurrency int
	Rate        float64
	Timeout     time.Duration

	env *Env
}

// Register adds the --embed-* flags to fs.
func (e *EmbedFlags) Register(fs *flag.FlagSet, env *Env) {
	e.env = env
	fs.StringVar(&e.API, "embed-api", "", "embedding API for vectors derived from text (from=): openai (OpenAI-compatible POST {url}/embeddings: OpenAI, vLLM, llama.cpp, LM Studio, TEI) or ollama (POST {url}/api/embed); empty: no embedder. The API key is read from "+vecsink.APIKeyEnv)
	fs.StringVar(&e.URL, "embed-url", "", "base URL of the embedding service (openai default https://api.openai.com/v1, ollama default http://127.0.0.1:11434)")
	fs.StringVar(&e.Model, "embed-model", "", "embedding model name (required with --embed-api)")
	fs.IntVar(&e.Batch, "embed-batch", vecsink.DefaultEmbedBatchSize, "texts per embedding request")
	fs.IntVar(&e.Concurrency, "embed-concurrency", vecsink.DefaultEmbedConcurrency, "embedding requests in flight at most")
	fs.Float64Var(&e.Rate, "embed-rate", 0, "embedding requests per second at most (0: no limit)")
	fs.DurationVar(&e.Timeout, "embed-timeout", vecsink.DefaultEmbedRequestTimeout, "timeout of one embedding request")
}

// Options returns the indexer option that installs the embedder the flags
// describe, or none without --embed-api. Bad values are usage errors.
func (e *EmbedFlags) Options() ([]indexer.Option, error) {
	if e.API == "" {
		if e.URL != "" || e.Model != "" {
			return nil, Usagef("--embed-url and --embed-model need --embed-api (openai or ollama)")
		}
		return nil, nil
	}
	switch {
	case e.Model == "":
		return nil, Usagef("--embed-model is required with --embed-api %s", e.API)
	case e.Batch < 1:
		return nil, Usagef("--embed-batch %d: want at least 1", e.Batch)
	case e.Concurrency < 1:
		return nil, Usagef("--embed-concurrency %d: want at least 1", e.Concurrency)
	case e.Rate < 0:
		return nil, Usagef("--embed-rate %v: want 0 (no limit) or a positive rate", e.Rate)
	case e.Timeout <= 0:
		return nil, Usagef("--embed-timeout %v: want a positive duration", e.Timeout)
	}
	getenv := func(string) string { return "" }
	if e.env != nil && e.env.Getenv != nil {
		getenv = e.env.Getenv
	}
	copts := []vecsink.EmbedderOption{vecsink.WithAPIKey(getenv(vecsink.APIKeyEnv)), vecsink.WithRequestTimeout(e.Timeout)}
	var client vecsink.Embedder
	var err error
	switch e.API {
	case EmbedAPIOpenAI:
		url := e.URL
		if url == "" {
			url = "https://api.openai.com/v1"
		}
		client, err = vecsink.NewOpenAIEmbedder(url, e.Model, copts...)
	case EmbedAPIOllama:
		url := e.URL
		if url == "" {
			url = "http://127.0.0.1:11434"
		}
		client, err = vecsink.NewOllamaEmbedder(url, e.Model, copts...)
	default:
		return nil, Usagef("--embed-api %q: want openai or ollama", e.API)
	}
	if err != nil {
		return nil, Usagef("--embed-url %q: %v", e.URL, err)
	}
	bopts := []vecsink.BatchOption{vecsink.WithBatchSize(e.Batch), vecsink.WithConcurrency(e.Concurrency)}
	if e.Rate > 0 {
		bopts = append(bopts, vecsink.WithRateLimit(e.Rate, max(1, e.Concurrency)))
	}
	return []indexer.Option{indexer.WithEmbedder(client, bopts...)}, nil
}

// String describes the embedder for logs (never the key).
func (e *EmbedFlags) String() string {
	if e.API == "" {
		return "none"
	}
	return fmt.Sprintf("%s %s model %s (batch %d, concurrency %d, rate %v/s)", e.API, e.URL, e.Model, e.Batch, e.Concurrency, e.Rate)
}
