package hybrid

import "errors"

// ErrInvalidOption reports a bad option value of Search.
var ErrInvalidOption = errors.New("hybrid: invalid option")

// Result is one fused result: the model, its fused score and what each side
// said about it. A side that did not return the model has rank 0 and a NaN
// score.
type Result[T any] struct {
	Model T
	// Score is the RRF score: the sum over both sides of
	// weight / (k + rank). Higher is better; results are sorted by it.
	Score float64
	// VecRank is the model's 1-based position in the vector candidates,
	// 0 when it was not among them.
	VecRank int
	// Distance is the vector distance as in vecsink.Result (NaN when
	// VecRank is 0).
	Distance float64
	// TextRank is the model's 1-based position in the full-text candidates,
	// 0 when it was not among them.
	TextRank int
	// BM25 is the full-text rank as in ftssink.Hit.Rank (NaN when TextRank
	// is 0).
	BM25 float64
	// Snippets and Highlights are those asked for with WithTextOptions, for
	// models found by the full-text side (nil otherwise).
	Snippets   map[string]string
	Highlights map[string]string
}
