package vecsink

import (
	"context"
	"fmt"

	"github.com/outboxindexer/outboxindexer/internal/embedhttp"
)

// NewOpenAIEmbedder returns an embedder for the OpenAI-compatible API, served
// by OpenAI, vLLM, llama.cpp server, LM Studio and Text Embeddings Inference:
// POST {baseURL}/embeddings with {"model": model, "input": [texts]}, answered
// by {"data": [{"index": i, "embedding": [...]}, ...]}. baseURL includes the
// version prefix, e.g. "https://api.openai.com/v1" or "http://localhost:8000/v1".
func NewOpenAIEmbedder(baseURL, model string, opts ...EmbedderOption) (*HTTPEmbedder, error) {
	h, err := newHTTPEmbedder("openai", baseURL, "/embeddings", model, opts)
	if err != nil {
		return nil, err
	}
	h.call = callOpenAI
	return h, nil
}

func callOpenAI(ctx context.Context, h *HTTPEmbedder, texts []string) ([]embedhttp.Vector, []bool, error) {
	var resp embedhttp.OpenAIResponse
	if err := h.http.PostJSON(ctx, h.endpoint, embedhttp.OpenAIRequest{Model: h.model, Input: texts}, &resp); err != nil {
		return nil, nil, err
	}
	vecs := make([]embedhttp.Vector, len(texts))
	present := make([]bool, len(texts))
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= len(texts) {
			return nil, nil, errMalformed{fmt.Sprintf("the answer has an embedding for index %d of a request of %d texts", d.Index, len(texts))}
		}
		if present[d.Index] {
			return nil, nil, errMalformed{fmt.Sprintf("the answer has two embeddings for index %d", d.Index)}
		}
		vecs[d.Index], present[d.Index] = d.Embedding, true
	}
	return vecs, present, nil
}
