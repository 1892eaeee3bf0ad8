package embedhttp

// OpenAIRequest is the body of POST {base}/embeddings in the OpenAI API
// (also served by vLLM, llama.cpp server, LM Studio and Text Embeddings
// Inference).
type OpenAIRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

// OpenAIResponse is the answer to an OpenAIRequest: one item per input,
// each with the index of its input (items may come in any order).
type OpenAIResponse struct {
	Data []OpenAIEmbedding `json:"data"`
}

// OpenAIEmbedding is one item of OpenAIResponse.Data.
type OpenAIEmbedding struct {
	Index     int    `json:"index"`
	Embedding Vector `json:"embedding"`
}

// OllamaRequest is the body of Ollama's POST {base}/api/embed.
type OllamaRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
	// Truncate is sent as false: Ollama would otherwise silently cut inputs
	// longer than the model's context, and a text must never be embedded
	// partially without the caller knowing.
	Truncate bool `json:"truncate"`
}

// OllamaResponse is the answer to an OllamaRequest: the vectors in input
// order.
type OllamaResponse struct {
	Embeddings []Vector `json:"embeddings"`
}
