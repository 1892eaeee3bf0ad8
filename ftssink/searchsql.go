package ftssink

import (
	"context"

	"gorm.io/gorm"
)

// RankColumn is the result column of the statement SearchSQL returns that
// holds the bm25 rank (Hit.Rank), for WithOrderBy and WithSelect fragments
// and for the struct the rows are scanned into (a field tagged
// `gorm:"column:oi_rank"`). It is not called "rank": that is a hidden
// column of every FTS5 table.
const RankColumn = "oi_rank"

// SearchSQL returns the statement and arguments that Search runs for the
// same query and options, without running it: for db.Raw(sql,
// args...).Scan(&rows), a CTE of a larger query, or a report. It reads the
// model's spec from the registry on db (hence ctx) and validates everything
// Search validates before running, with the same errors; the rendered
// MATCH expression and every option value are bound arguments, never part
// of the SQL text.
//
// The statement returns, best first:
//
//	SELECT <key> AS "<primary key column>", bm25(<fts>, ?…) AS oi_rank,
//	       snippet(…) AS "snippet_<column>"…, highlight(…) AS "highlight_<column>"… [, WithSelect columns]
//	FROM <fts> [CROSS JOIN oi_keymap AS km …  (text keys)]
//	           [CROSS JOIN "<source table>" ON "<source table>"."<key>" = <key>] [WithJoin clauses]
//	WHERE <fts> MATCH ? [AND <not soft-deleted>] [AND (WithFilter)…]
//	ORDER BY [WithOrderBy terms,] oi_rank, <fts>.rowid LIMIT ? OFFSET ?
//
// so rows scan into a struct with the model's primary key field, an
// `gorm:"column:oi_rank"` float64 and fields for the other columns. The
// source table is joined, under its own name, whenever WithFilter,
// WithSelect, WithJoin or WithOrderBy is given. Unlike Search, the rows are
// not re-checked against db's conditions or scopes, and FTS5 reports a bad
// Raw expression only when the statement runs.
func SearchSQL[T any](ctx context.Context, db *gorm.DB, q Query, opts ...Option) (string, []any, error) {
	t, err := resolve[T](ctx, db)
	if err != nil {
		return "", nil, err
	}
	stmt, args, _, err := buildSearch(t.Spec, newSearchConfig(opts), q)
	return stmt, args, err
}
