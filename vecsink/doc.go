// Package vecsink owns the sqlite-vec vec0 sidecars of an indexed model (one
// per vector field): their DDL, how the indexer applies changes to them, the
// [Embedding] field type, nearest-neighbour queries that return gorm models
// (with [WithField] to pick the vector field), and the computing of
// embeddings from text: the [Embedder] interface with its classified errors
// ([EmbedError], [PartialError]), HTTP clients for the OpenAI-compatible and
// Ollama APIs ([NewOpenAIEmbedder], [NewOllamaEmbedder]), the deterministic
// [HashEmbedder], the [BatchEmbedder] that adds batching, concurrency, rate
// limits, retries and per-text isolation to any Embedder, and the [Chunker]
// that splits long texts.
package vecsink
