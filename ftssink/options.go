package ftssink

import (
	"fmt"
	"math"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/sqlfrag"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// DefaultLimit is the number of hits Search returns without WithLimit.
const DefaultLimit = 10

// MaxSnippetTokens is the longest snippet FTS5 produces, in tokens.
const MaxSnippetTokens = 64

// Option configures one Search, SearchSQL or Matches call.
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

// fragment is a piece of caller SQL with its bound arguments.
type fragment struct {
	sql  string
	args []any
}

type searchConfig struct {
	limit          int
	offset         int
	weights        []float64
	snippets       []snippetOpt
	highlights     []highlightOpt
	includeDeleted bool
	filters        []fragment
	selects        []string
	joins          []fragment
	orders         []fragment
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

// WithFilter adds a condition on the source table's columns (tenant,
// status, date, …) to the full-text query: hits whose source row does not
// satisfy it are left out before WithLimit and WithOffset apply, so a
// filtered query still returns limit hits when that many match. The source
// table is joined under its own name; qualify columns that the FTS5 table
// also has ("articles.title", or "articles.status" for clarity). Several
// filters are ANDed.
//
// args are bound to the anonymous "?" placeholders of sql in order (their
// number must match; numbered or named parameters are refused); never
// format user input into sql: the SQL text is trusted code, pasted into the
// query as written (inside parentheses). A fragment with a ';', a comment,
// unbalanced parentheses or quotes, or a clause keyword such as WHERE or
// ORDER outside parentheses is refused with ErrInvalidOption, and so is
// one SQLite cannot compile (an unknown column).
//
// The filter is evaluated for every row that matches the expression, with
// one primary-key lookup in the source table each: a selective MATCH
// expression keeps it cheap.
func WithFilter(sql string, args ...any) Option {
	return func(c *searchConfig) { c.filters = append(c.filters, fragment{sql: sql, args: args}) }
}

// WithSelect adds result columns to the statement SearchSQL returns, after
// the key, the rank, the snippets and the highlights: each string is one or
// more result columns ("authors.name AS author_name", "articles.title,
// articles.year"), which may use the source table (joined under its own
// name), the tables of WithJoin and the FTS5 table. It changes the shape of
// the rows, so only SearchSQL accepts it: Search and Matches fail with
// ErrInvalidOption. The text is trusted SQL and takes no arguments; the
// lexical checks of WithFilter apply.
func WithSelect(columns ...string) Option {
	return func(c *searchConfig) { c.selects = append(c.selects, columns...) }
}

// WithJoin joins another table to the hits: clause starts with JOIN, INNER
// JOIN, LEFT [OUTER] JOIN or CROSS JOIN and usually relates the table to the
// source table, which is joined under its own name whenever WithFilter,
// WithSelect, WithJoin or WithOrderBy is given ("JOIN authors ON authors.id
// = articles.author_id"). args are bound to its "?" placeholders. Joins
// apply before the limit: an inner join drops the hits it finds no row for
// (the next ones take their place), and a join to several rows per hit
// repeats the hit (Search and Matches keep its first row; SearchSQL returns
// them all, each taking a place within the limit). RIGHT, FULL and NATURAL
// joins are refused (ErrInvalidOption), as is an empty clause.
func WithJoin(clause string, args ...any) Option {
	return func(c *searchConfig) { c.joins = append(c.joins, fragment{sql: clause, args: args}) }
}

// WithOrderBy orders the hits by expr first ("articles.published_at DESC",
// "authors.name"), then by rank and rowid as usual; the order applies
// before WithLimit and WithOffset, so WithOrderBy("articles.published_at
// DESC") with WithLimit(10) returns the ten newest matching rows. expr may
// use the source table, the tables of WithJoin and the result columns
// (oi_rank, see RankColumn); args are bound to its "?" placeholders. Search,
// SearchSQL and Matches all honour it.
func WithOrderBy(expr string, args ...any) Option {
	return func(c *searchConfig) { c.orders = append(c.orders, fragment{sql: expr, args: args}) }
}

// shaped reports whether the statement joins the source table.
func (c *searchConfig) shaped() bool {
	return len(c.filters) > 0 || len(c.selects) > 0 || len(c.joins) > 0 || len(c.orders) > 0
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
	for _, x := range c.filters {
		if err := sqlfrag.Check(sqlfrag.Expr, x.sql, len(x.args)); err != nil {
			return nil, nil, bad("WithFilter(%q): %v", x.sql, err)
		}
	}
	for _, x := range c.selects {
		if err := sqlfrag.Check(sqlfrag.Columns, x, 0); err != nil {
			return nil, nil, bad("WithSelect(%q): %v", x, err)
		}
	}
	for _, x := range c.joins {
		if err := sqlfrag.Check(sqlfrag.Join, x.sql, len(x.args)); err != nil {
			return nil, nil, bad("WithJoin(%q): %v", x.sql, err)
		}
	}
	for _, x := range c.orders {
		if err := sqlfrag.Check(sqlfrag.Order, x.sql, len(x.args)); err != nil {
			return nil, nil, bad("WithOrderBy(%q): %v", x.sql, err)
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
