package ftssink

import (
	"fmt"
	"math"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// DefaultLimit is the number of hits Search returns without WithLimit.
const DefaultLimit = 10

// MaxSnippetTokens is the longest snippet FTS5 produces, in tokens.
const MaxSnippetTokens = 64

// Option configures one Search or Matches call.
type Option func(*searchConfig)

type snippetOpt struct {
	column                  string
	before, after, ellipsis string
	tokens                  int
}

type highlightOpt struct {
	column        string
	before, after string
}

type searchConfig struct {
	limit          int
	offset         int
	weights        []float64
	snippets       []snippetOpt
	highlights     []highlightOpt
	includeDeleted bool
}

func newSearchConfig(opts []Option) *searchConfig {
	c := &searchConfig{limit: DefaultLimit}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// WithLimit sets the maximum number of hits (default DefaultLimit, 10).
// n must be at least 1.
func WithLimit(n int) Option { return func(c *searchConfig) { c.limit = n } }

// WithOffset skips the n best hits, for paging (default 0).
func WithOffset(n int) Option { return func(c *searchConfig) { c.offset = n } }

// WithRanking sets bm25 column weights, in the order of the model's fts5
// columns (the order of the fields in the struct): a match in a column of
// weight 10 counts ten times one in a column of weight 1. Columns without a
// weight get 1.0, FTS5's default.
func WithRanking(weights ...float64) Option {
	return func(c *searchConfig) { c.weights = append([]float64(nil), weights...) }
}

// WithSnippet adds to each hit a snippet of column: a fragment of at most
// tokens tokens (1..64) around the matches, each match wrapped in before and
// after, ellipsis where text was cut (FTS5's snippet()). Several columns may
// be asked for. Not available on contentless tables (ErrNoContent).
func WithSnippet(column, before, after, ellipsis string, tokens int) Option {
	return func(c *searchConfig) {
		c.snippets = append(c.snippets, snippetOpt{column, before, after, ellipsis, tokens})
	}
}

// WithHighlight adds to each hit the whole text of column with each match
// wrapped in before and after (FTS5's highlight()). Several columns may be
// asked for. Not available on contentless tables (ErrNoContent).
func WithHighlight(column, before, after string) Option {
	return func(c *searchConfig) {
		c.highlights = append(c.highlights, highlightOpt{column, before, after})
	}
}

// IncludeDeleted makes Search return soft-deleted rows too (they are
// excluded by default) and loads their models with gorm's Unscoped.
func IncludeDeleted() Option { return func(c *searchConfig) { c.includeDeleted = true } }

// validate checks the options against spec and resolves column names to
// their index in the FTS5 table (case-insensitively, like FTS5).
func (c *searchConfig) validate(spec *outbox.Spec) (snippetCols, highlightCols []int, err error) {
	f := spec.FTS
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: table %s: %s", ErrInvalidOption, f.Table, fmt.Sprintf(format, args...))
	}
	if c.limit < 1 {
		return nil, nil, bad("WithLimit(%d): want at least 1", c.limit)
	}
	if c.offset < 0 {
		return nil, nil, bad("WithOffset(%d): want 0 or more", c.offset)
	}
	if len(c.weights) > len(f.Columns) {
		return nil, nil, bad("WithRanking: %d weights for %d columns", len(c.weights), len(f.Columns))
	}
	for i, w := range c.weights {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, nil, bad("WithRanking: weight %d is %v", i, w)
		}
	}
	if (len(c.snippets) > 0 || len(c.highlights) > 0) && f.Mode == outbox.ModeContentless {
		return nil, nil, fmt.Errorf("%w: table %s is contentless: no snippets or highlights (use external or in-table mode)", ErrNoContent, f.Table)
	}
	colIndex := func(opt, name string) (int, error) {
		names := make([]string, len(f.Columns))
		for i, col := range f.Columns {
			if strings.EqualFold(col.Name, name) {
				return i, nil
			}
			names[i] = col.Name
		}
		return 0, bad("%s(%q): columns are %s", opt, name, strings.Join(names, ", "))
	}
	for _, s := range c.snippets {
		i, err := colIndex("WithSnippet", s.column)
		if err != nil {
			return nil, nil, err
		}
		if s.tokens < 1 || s.tokens > MaxSnippetTokens {
			return nil, nil, bad("WithSnippet(%q): %d tokens, want 1..%d", s.column, s.tokens, MaxSnippetTokens)
		}
		snippetCols = append(snippetCols, i)
	}
	for _, h := range c.highlights {
		i, err := colIndex("WithHighlight", h.column)
		if err != nil {
			return nil, nil, err
		}
		highlightCols = append(highlightCols, i)
	}
	return snippetCols, highlightCols, nil
}
