package vecsink

import (
	"fmt"

	"github.com/outboxindexer/outboxindexer/internal/sqlfrag"
)

// Option configures one KNN, KNNSQL or Neighbors call.
type Option func(*queryConfig)

// fragment is a piece of caller SQL with its bound arguments.
type fragment struct {
	sql  string
	args []any
}

type queryConfig struct {
	filters        []fragment
	selects        []string
	joins          []fragment
	orders         []fragment
	includeDeleted bool
	field          string // WithField
	fieldSet       bool
	chunkFetch     int // WithChunkFetch; 0: DefaultChunkFetch
}

func (c *queryConfig) chunkFetchOrDefault() int {
	if c.chunkFetch > 0 {
		return c.chunkFetch
	}
	return DefaultChunkFetch
}

// WithChunkFetch sets, for a chunked vector field (chunk=N), how many
// chunks per requested row the query fetches from vec0 (k*n, at most MaxK)
// before it keeps each row's best chunk (default DefaultChunkFetch). Rows
// are ranked by their best chunk exactly as long as the k nearest rows'
// best chunks are among the k*n nearest chunks; raise n when rows have many
// chunks close to the queries. Values below 1 are ignored.
func WithChunkFetch(n int) Option {
	return func(c *queryConfig) { c.chunkFetch = n }
}

func newQueryConfig(opts []Option) *queryConfig {
	c := &queryConfig{}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// shaped reports whether the options need the source table joined to the
// nearest neighbours (see WithJoin).
func (c *queryConfig) shaped() bool {
	return len(c.selects) > 0 || len(c.joins) > 0 || len(c.orders) > 0
}

func (c *queryConfig) validate() error {
	bad := func(opt, sql string, err error) error {
		return fmt.Errorf("%w: %s(%q): %w", ErrInvalidOption, opt, sql, err)
	}
	for _, f := range c.filters {
		if err := sqlfrag.Check(sqlfrag.Expr, f.sql, len(f.args)); err != nil {
			return bad("WithFilter", f.sql, err)
		}
	}
	for _, s := range c.selects {
		if err := sqlfrag.Check(sqlfrag.Columns, s, 0); err != nil {
			return bad("WithSelect", s, err)
		}
	}
	for _, j := range c.joins {
		if err := sqlfrag.Check(sqlfrag.Join, j.sql, len(j.args)); err != nil {
			return bad("WithJoin", j.sql, err)
		}
	}
	for _, o := range c.orders {
		if err := sqlfrag.Check(sqlfrag.Order, o.sql, len(o.args)); err != nil {
			return bad("WithOrderBy", o.sql, err)
		}
	}
	return nil
}

// WithFilter adds a conjunct to the WHERE clause of the query on the vec0
// sidecar. Several filters are ANDed. args are always bound, to the
// anonymous "?" placeholders of sql in order (their number must match;
// numbered or named parameters are refused); never format user input into
// sql: the SQL text is trusted code, pasted into the query as written
// (inside parentheses). A fragment with a ';', a comment, unbalanced
// parentheses or quotes, or a clause keyword such as WHERE or ORDER outside
// parentheses is refused with ErrInvalidOption.
//
// The filter sees the vec0 table's columns only, not the source table's:
//
//   - the metadata columns of the model's vec spec (outbox.VecSpec.Metadata),
//     under their source column names: declare them on the vec tag,
//     `vec:"dim=384;metadata=category,year"`, and the indexer copies those
//     source columns into vec0 (see gormplugin for the types);
//   - "deleted" (0 live, 1 soft-deleted) when the model soft-deletes; KNN
//     already filters it unless IncludeDeleted is given;
//   - the key: "rowid" for integer primary keys, "id" for text ones.
//
// For the l2 and cosine metrics sqlite-vec applies the filter inside the KNN
// search (all k results satisfy it) only when it is made of comparisons
// (=, !=, <, <=, >, >=) of a metadata column with a value, IN lists on
// metadata columns or on the key ("rowid IN (…)", "id IN (…)"), joined by
// AND. Other forms are either rejected by sqlite-vec ("illegal WHERE
// constraint", for LIKE, IS, …) or, like OR of different columns, NOT, or a
// range on the key, applied after the k nearest were chosen, which returns
// fewer than k results. The dot metric scans every row and applies any
// filter exactly.
func WithFilter(sql string, args ...any) Option {
	return func(c *queryConfig) { c.filters = append(c.filters, fragment{sql: sql, args: args}) }
}

// WithSelect adds result columns to the statement KNNSQL returns, after the
// key and the distance: each string is one or more result columns
// ("authors.name AS author_name", "articles.title, articles.year"), which
// may use the source table under its own name, the tables of WithJoin and
// the nearest-neighbour rows (see KNNSQL). It changes the shape of the rows,
// so only KNNSQL accepts it: KNN and Neighbors, which return Results and
// Neighbors, fail with ErrInvalidOption. The text is trusted SQL and takes
// no arguments; the same lexical checks as WithFilter apply (an empty
// string, a ';', a comment, a FROM or WHERE outside parentheses are
// refused).
func WithSelect(columns ...string) Option {
	return func(c *queryConfig) { c.selects = append(c.selects, columns...) }
}

// WithJoin joins another table to the nearest neighbours: clause starts with
// JOIN, INNER JOIN, LEFT [OUTER] JOIN or CROSS JOIN and usually relates the
// table to the source table, which is joined under its own name whenever
// WithSelect, WithJoin or WithOrderBy is given ("JOIN authors ON authors.id
// = articles.author_id"). args are bound to its "?" placeholders. Several
// joins are added in order.
//
// The k nearest rows are chosen first, by the vec0 index and WithFilter;
// joins and orderings apply to those k rows. An inner join drops the
// neighbours it finds no row for, so KNN can then return fewer than k
// results; a join to several rows per neighbour repeats it (KNN and
// Neighbors keep its first row; KNNSQL returns them all). RIGHT, FULL and
// NATURAL joins are refused (ErrInvalidOption), as is an empty clause.
func WithJoin(clause string, args ...any) Option {
	return func(c *queryConfig) { c.joins = append(c.joins, fragment{sql: clause, args: args}) }
}

// WithOrderBy orders the k nearest rows by expr first ("articles.year
// DESC", "authors.name, distance"), then by distance and key as usual:
// it does not change which k rows are returned, only their order. expr may
// use the source table, the tables of WithJoin and the result columns
// (distance); args are bound to its "?" placeholders. Several orderings
// apply in order. KNN, KNNSQL and Neighbors all honour it.
func WithOrderBy(expr string, args ...any) Option {
	return func(c *queryConfig) { c.orders = append(c.orders, fragment{sql: expr, args: args}) }
}

// IncludeDeleted makes the query return soft-deleted rows too (they are
// excluded by default) and loads their models with gorm's Unscoped.
func IncludeDeleted() Option {
	return func(c *queryConfig) { c.includeDeleted = true }
}
