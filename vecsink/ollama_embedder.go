package vecsink

import (
	"context"
	"fmt"

	"github.com/outboxindexer/outboxindexer/internal/embedhttp"
)

// NewOllamaEmbedder returns an embedder for Ollama's API: POST
// {baseURL}/api/embed with {"model": model, "input": [texts], "truncate":
// false}, answered by {"embeddings": [[...], ...]} in input order. baseURL is
// the server's root, e.g. "http://localhost:11434". Inputs longer than the
// model's context fail (Ollama's default would truncate them silently):
// split long texts with a [Chunker].
func NewOllamaEmbedder(baseURL, model string, opts ...EmbedderOption) (*HTTPEmbedder, error) {
	h, err := newHTTPEmbedder("ollama", baseURL, "/api/embed", model, opts)
	if err != nil {
		return nil, err
	}
	h.call = callOllama
	return h, nil
}

func callOllama(ctx context.Context, h *HTTPEmbedder, texts []string) ([]embedhttp.Vector, []bool, error) {
	var resp embedhttp.OllamaResponse
	if err := h.http.PostJSON(ctx, h.endpoint, embedhttp.OllamaRequest{Model: h.model, Input: texts}, &resp); err != nil {
		return nil, nil, err
	}
	if len(resp.Embeddings) != len(texts) {
		return nil, nil, errMalformed{fmt.Sprintf("the answer has %d embeddings for %d texts", len(resp.Embeddings), len(texts))}
	}
	present := make([]bool, len(texts))
	for i := range present {
		present[i] = true
	}
	return resp.Embeddings, present, nil
}
