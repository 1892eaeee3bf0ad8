// Package embedhttp owns the HTTP and JSON machinery shared by the embedding
// clients of vecsink: posting a JSON request with a context and an optional
// bearer key, turning non-2xx answers into a [StatusError] that carries the
// provider's message (with the key redacted) and its Retry-After, the wire
// types of the OpenAI-compatible and Ollama embedding APIs, and a tolerant
// decoder for vectors that also reads the NaN and Infinity literals some
// servers emit. It knows nothing of the product packages.
package embedhttp
