package vecsink

import "fmt"

// Option configures one KNN or Neighbors call.
type Option func(*queryConfig)

type filter struct {
	sql  string
	args []any
}

type queryConfig struct {
	filters        []filter
	includeDeleted bool
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

func (c *queryConfig) validate() error {
	for _, f := range c.filters {
		if f.sql == "" {
			return fmt.Errorf("%w: WithFilter with empty SQL", ErrInvalidOption)
		}
	}
	return nil
}

// WithFilter adds a conjunct to the WHERE clause of the query on the vec0
// sidecar. Several filters are ANDed. args are always bound, to the
// anonymous "?" placeholders of sql in order (numbered or named parameters
// are not supported); never format user input into sql: the SQL text is
// trusted code, pasted into the query as written (inside parentheses).
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
	return func(c *queryConfig) { c.filters = append(c.filters, filter{sql: sql, args: args}) }
}

// IncludeDeleted makes the query return soft-deleted rows too (they are
// excluded by default) and loads their models with gorm's Unscoped.
func IncludeDeleted() Option {
	return func(c *queryConfig) { c.includeDeleted = true }
}
