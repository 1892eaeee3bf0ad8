package cli

import (
	"flag"
	"fmt"
	"slices"
	"strings"
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
	// Named are the embedders of --embedder, for vectors tagged
	// embedder=NAME.
	Named NamedEmbedders

	env *Env
}

// NamedEmbedder is one --embedder flag: the client of the derived vectors
// tagged embedder=Name.
type NamedEmbedder struct {
	Name, API, URL, Model string
}

// NamedEmbedders is the repeatable --embedder flag's value.
type NamedEmbedders []NamedEmbedder

// String implements flag.Value.
func (n *NamedEmbedders) String() string {
	var parts []string
	for _, e := range *n {
		parts = append(parts, fmt.Sprintf("name=%s,api=%s,model=%s,url=%s", e.Name, e.API, e.Model, e.URL))
	}
	return strings.Join(parts, " ")
}

// Set implements flag.Value: name=NAME,api=openai|ollama,model=MODEL[,url=URL].
func (n *NamedEmbedders) Set(v string) error {
	var e NamedEmbedder
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || val == "" {
			return fmt.Errorf("%q: want key=value pairs name=NAME,api=openai|ollama,model=MODEL[,url=URL]", kv)
		}
		switch k {
		case "name":
			e.Name = val
		case "api":
			e.API = val
		case "model":
			e.Model = val
		case "url":
			e.URL = val
		default:
			return fmt.Errorf("unknown key %q: want name, api, model or url", k)
		}
	}
	switch {
	case e.Name == "":
		return fmt.Errorf("%q: name= is required (the embedder= of the vectors it embeds)", v)
	case e.API == "" || e.Model == "":
		return fmt.Errorf("%q: api= and model= are required", v)
	case slices.ContainsFunc(*n, func(x NamedEmbedder) bool { return x.Name == e.Name }):
		return fmt.Errorf("embedder %q given twice", e.Name)
	}
	*n = append(*n, e)
	return nil
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
	fs.Var(&e.Named, "embedder", "name=NAME,api=openai|ollama,model=MODEL[,url=URL]: the embedder of the vectors tagged embedder=NAME (repeatable; --embed-batch, --embed-concurrency, --embed-rate and --embed-timeout apply to each; the API key is read from "+vecsink.APIKeyEnv+"_<NAME in upper case>, else "+vecsink.APIKeyEnv+")")
}

// Options returns the indexer options that install the embedders the flags
// describe: the default one of --embed-api, and one per --embedder. None
// without them. Bad values are usage errors.
func (e *EmbedFlags) Options() ([]indexer.Option, error) {
	if e.API == "" && (e.URL != "" || e.Model != "") {
		return nil, Usagef("--embed-url and --embed-model need --embed-api (openai or ollama)")
	}
	if e.API == "" && len(e.Named) == 0 {
		return nil, nil
	}
	switch {
	case e.API != "" && e.Model == "":
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
	bopts := []vecsink.BatchOption{vecsink.WithBatchSize(e.Batch), vecsink.WithConcurrency(e.Concurrency)}
	if e.Rate > 0 {
		bopts = append(bopts, vecsink.WithRateLimit(e.Rate, max(1, e.Concurrency)))
	}
	var opts []indexer.Option
	if e.API != "" {
		client, err := e.client(e.API, e.URL, e.Model, getenv(vecsink.APIKeyEnv), "--embed-api", "--embed-url")
		if err != nil {
			return nil, err
		}
		opts = append(opts, indexer.WithEmbedder(client, bopts...))
	}
	for _, n := range e.Named {
		key := getenv(vecsink.APIKeyEnv + "_" + strings.ToUpper(n.Name))
		if key == "" {
			key = getenv(vecsink.APIKeyEnv)
		}
		flag := fmt.Sprintf("--embedder name=%s", n.Name)
		client, err := e.client(n.API, n.URL, n.Model, key, flag+": api", flag+": url")
		if err != nil {
			return nil, err
		}
		opts = append(opts, indexer.WithNamedEmbedder(n.Name, client, bopts...))
	}
	return opts, nil
}

// client returns the client of api at url (the API's default when empty)
// for model; apiFlag and urlFlag name the flags in errors.
func (e *EmbedFlags) client(api, url, model, key, apiFlag, urlFlag string) (vecsink.Embedder, error) {
	copts := []vecsink.EmbedderOption{vecsink.WithAPIKey(key), vecsink.WithRequestTimeout(e.Timeout)}
	var client vecsink.Embedder
	var err error
	switch api {
	case EmbedAPIOpenAI:
		if url == "" {
			url = "https://api.openai.com/v1"
		}
		client, err = vecsink.NewOpenAIEmbedder(url, model, copts...)
	case EmbedAPIOllama:
		if url == "" {
			url = "http://127.0.0.1:11434"
		}
		client, err = vecsink.NewOllamaEmbedder(url, model, copts...)
	default:
		return nil, Usagef("%s %q: want openai or ollama", apiFlag, api)
	}
	if err != nil {
		return nil, Usagef("%s %q: %v", urlFlag, url, err)
	}
	return client, nil
}

// String describes the embedder for logs (never the key).
func (e *EmbedFlags) String() string {
	if e.API == "" && len(e.Named) == 0 {
		return "none"
	}
	var parts []string
	if e.API != "" {
		parts = append(parts, fmt.Sprintf("%s %s model %s", e.API, e.URL, e.Model))
	}
	for _, n := range e.Named {
		parts = append(parts, fmt.Sprintf("%s: %s %s model %s", n.Name, n.API, n.URL, n.Model))
	}
	return fmt.Sprintf("%s (batch %d, concurrency %d, rate %v/s)", strings.Join(parts, "; "), e.Batch, e.Concurrency, e.Rate)
}
