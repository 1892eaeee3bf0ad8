package hybrid

import (
	"fmt"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Defaults of Search.
const (
	DefaultLimit      = 10 // results returned
	DefaultCandidates = 50 // results taken from each side before fusion
	DefaultRRFK       = 60 // the k of reciprocal-rank fusion (Cormack et al.)
)

// Option configures one Search call.
type Option func(*config)

type config struct {
	limit, candidates int
	rrfK              float64
	vecW, textW       float64
	vecOpts           []vecsink.Option
	textOpts          []ftssink.Option
	includeDeleted    bool
}

func newConfig(opts []Option) *config {
	c := &config{limit: DefaultLimit, candidates: DefaultCandidates, rrfK: DefaultRRFK, vecW: 1, textW: 1}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// WithLimit sets the number of fused results (default 10, at least 1).
func WithLimit(n int) Option { return func(c *config) { c.limit = n } }

// WithCandidates sets how many results each side contributes to the fusion
// (default 50, 1..vecsink.MaxK). A model outside both candidate lists is not
// returned.
func WithCandidates(n int) Option { return func(c *config) { c.candidates = n } }

// WithRRFK sets the k constant of reciprocal-rank fusion (default 60, 0 or
// more): the larger it is, the less the top ranks dominate.
func WithRRFK(k float64) Option { return func(c *config) { c.rrfK = k } }

// WithWeights sets the weight of the vector ranking and of the full-text
// ranking in the fused score (default 1 and 1; 0 or more, not both 0). A
// side of weight 0 still marks its ranks in the results but adds nothing to
// the score.
func WithWeights(vector, text float64) Option {
	return func(c *config) { c.vecW, c.textW = vector, text }
}

// WithVecOptions passes options to the vector side (vecsink.WithFilter,
// WithJoin, WithOrderBy; WithSelect is refused). A WithOrderBy there
// changes the vector ranking that the fusion uses.
func WithVecOptions(opts ...vecsink.Option) Option {
	return func(c *config) { c.vecOpts = append(c.vecOpts, opts...) }
}

// WithTextOptions passes options to the full-text side (ftssink.WithRanking,
// WithSnippet, WithHighlight, WithFilter, WithJoin, WithOrderBy; WithSelect
// is refused). Its WithLimit and WithOffset are overridden by
// WithCandidates; a WithOrderBy changes the full-text ranking that the
// fusion uses.
func WithTextOptions(opts ...ftssink.Option) Option {
	return func(c *config) { c.textOpts = append(c.textOpts, opts...) }
}

// IncludeDeleted includes soft-deleted rows on both sides and loads their
// models with gorm's Unscoped.
func IncludeDeleted() Option { return func(c *config) { c.includeDeleted = true } }

func (c *config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOption, fmt.Sprintf(format, args...))
	}
	switch {
	case c.limit < 1:
		return bad("WithLimit(%d): want at least 1", c.limit)
	case c.candidates < 1 || c.candidates > vecsink.MaxK:
		return bad("WithCandidates(%d): want 1..%d", c.candidates, vecsink.MaxK)
	case !finite(c.rrfK) || c.rrfK < 0:
		return bad("WithRRFK(%v): want a finite k >= 0", c.rrfK)
	case !finite(c.vecW) || !finite(c.textW) || c.vecW < 0 || c.textW < 0 || c.vecW+c.textW == 0:
		return bad("WithWeights(%v, %v): want finite weights >= 0, not both 0", c.vecW, c.textW)
	}
	return nil
}
