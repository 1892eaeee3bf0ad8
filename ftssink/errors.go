package ftssink

import "errors"

// Sentinel errors of the query side. Callers test them with errors.Is.
// A model whose table was never migrated gives an error wrapping
// outbox.ErrNotRegistered.
var (
	// ErrNoFTS reports a model that has no fts5 tag (its registry spec has
	// no FTS5 sidecar).
	ErrNoFTS = errors.New("ftssink: model has no fts5 sidecar")
	// ErrInvalidQuery reports a query the builder cannot render: a Not
	// outside And, And() or Or() without operands, a nil operand, an unknown
	// Column name, a Near without terms, with a negative distance or on a
	// table with detail=column or none.
	ErrInvalidQuery = errors.New("ftssink: invalid query")
	// ErrQuerySyntax reports an expression FTS5 refused: a syntax error or
	// unknown column in a Raw expression, or a phrase on a table with
	// detail=column or none.
	ErrQuerySyntax = errors.New("ftssink: FTS5 query error")
	// ErrInvalidOption reports a bad option value: a limit below 1, a
	// negative offset, more ranking weights than columns or a non-finite
	// weight, an unknown snippet or highlight column, a snippet length
	// outside 1..64, a WithFilter, WithSelect, WithJoin or WithOrderBy
	// fragment that fails the lexical checks or that SQLite cannot compile,
	// WithSelect given to Search or Matches.
	ErrInvalidOption = errors.New("ftssink: invalid option")
	// ErrNoContent reports a snippet or highlight asked of a contentless
	// table, which keeps no text to show.
	ErrNoContent = errors.New("ftssink: contentless table has no text")
)
