package vecsink

import "context"

// Embedder computes embeddings of texts: one vector per text, in order.
//
// The contract, which the built-in clients and [BatchEmbedder] keep and which
// an indexer relies on to park exactly the failing texts and retry the rest:
//
//   - On success it returns len(texts) vectors and a nil error.
//   - When some texts can never be embedded (the service rejected that input,
//     or answered a vector of the wrong dimension or with NaN or Inf) and the
//     rest were, it returns len(texts) vectors, nil at the failed positions,
//     and a *[PartialError] listing one *[EmbedError] per failed text.
//   - Otherwise it returns a nil slice and an error: an *[EmbedError] whose
//     kind tells the caller what to do (errors.Is with [ErrEmbedTransient],
//     [ErrEmbedPermanent] or [ErrEmbedRejected]), or an error wrapping
//     ctx.Err() when the caller's context ended.
//
// Embed must be safe for concurrent use.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}
