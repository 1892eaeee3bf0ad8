package vecsink

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/synth"
)

// HashEmbedder is a deterministic local [Embedder] of HashEmbedder(dim)
// dimensions, for tests and demos: it maps a text to a unit vector by feature
// hashing its lower-cased words (the embeddings of `indexer demo`), so texts
// that share words get a small cosine distance. It needs no model weights and
// no network, and gives the same vectors on every machine. A text without
// words maps to the first basis vector, so that every vector is usable under
// metric=cosine (so do texts whose word hashes cancel out).
//
//	var e vecsink.Embedder = vecsink.HashEmbedder(384)
type HashEmbedder int

// Dim returns the number of dimensions.
func (h HashEmbedder) Dim() int { return int(h) }

// Embed returns one vector per text. It fails only for a dimension below 1,
// or when ctx is done.
func (h HashEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if h < 1 {
		return nil, fmt.Errorf("vecsink: HashEmbedder(%d): dim must be at least 1: %w", int(h), ErrInvalidOption)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vecsink: hash embedder: %w", err)
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = hashVector(t, int(h))
	}
	return out, nil
}

// hashVector is synth.Embed, except that a text without words (or whose word
// hashes cancel out) gets the first basis vector instead of zeros.
func hashVector(text string, dim int) []float32 {
	if len(strings.Fields(text)) > 0 {
		v := synth.Embed(text, dim)
		for _, x := range v {
			if x != 0 {
				return v
			}
		}
	}
	v := make([]float32, dim)
	v[0] = 1
	return v
}
