// Package sqlutil holds small SQL helpers shared by the outbox, the sinks
// and the indexer: identifier quoting, a per-transaction prepared statement
// cache, key-range chunking of a source table, and table existence checks.
// It is a foundation: it imports none of the product packages.
package sqlutil

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"strings"
)

// DB is what the helpers run statements on: *sql.DB, *sql.Tx or *sql.Conn
// (outbox.DB has the same methods).
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Quote returns s as an SQL identifier in double quotes, with embedded
// quotes doubled.
func Quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Placeholders returns n comma-separated "?" placeholders.
func Placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// Stmts prepares each distinct query once on db (when db can prepare, as
// *sql.Tx and *sql.Conn can) and reuses it. Close it before the transaction
// ends.
type Stmts struct {
	db    DB
	p     preparer
	cache map[string]*sql.Stmt
}

// NewStmts returns a statement cache on db.
func NewStmts(db DB) *Stmts {
	s := &Stmts{db: db}
	s.p, _ = db.(preparer)
	return s
}

// Exec executes query with args, through a cached prepared statement when
// possible.
func (s *Stmts) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.p == nil {
		return s.db.ExecContext(ctx, query, args...)
	}
	st, ok := s.cache[query]
	if !ok {
		var err error
		if st, err = s.p.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		if s.cache == nil {
			s.cache = map[string]*sql.Stmt{}
		}
		s.cache[query] = st
	}
	return st.ExecContext(ctx, args...)
}

// Close closes every prepared statement.
func (s *Stmts) Close() {
	for _, st := range s.cache {
		st.Close()
	}
	s.cache = nil
}

// TableExists reports whether a table (or virtual table) called name exists
// in the main schema.
func TableExists(ctx context.Context, db DB, name string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up table %s: %w", name, err)
	}
	return n > 0, nil
}

// KeyChunks splits the rows of table by its key column into consecutive key
// ranges of up to size rows, in key order, and calls fn for each with a SQL
// condition on alias.key and its arguments. total is the row count.
func KeyChunks(ctx context.Context, db DB, table, key, alias string, size int, fn func(cond string, args []any, rows int64) error) error {
	if size <= 0 {
		size = 10000
	}
	q := fmt.Sprintf(`SELECT %[2]s FROM %[1]s WHERE %[2]s > ? ORDER BY %[2]s LIMIT 1 OFFSET ?`, Quote(table), Quote(key))
	first := fmt.Sprintf(`SELECT %[2]s FROM %[1]s ORDER BY %[2]s LIMIT 1 OFFSET ?`, Quote(table), Quote(key))
	col := alias + "." + Quote(key)
	var lo any
	for {
		var hi any
		var err error
		if lo == nil {
			err = db.QueryRowContext(ctx, first, size-1).Scan(&hi)
		} else {
			err = db.QueryRowContext(ctx, q, lo, size-1).Scan(&hi)
		}
		last := errors.Is(err, sql.ErrNoRows)
		if err != nil && !last {
			return fmt.Errorf("chunk %s by %s: %w", table, key, err)
		}
		var cond string
		var args []any
		switch {
		case lo == nil && last:
			cond = "1"
		case lo == nil:
			cond, args = col+" <= ?", []any{hi}
		case last:
			cond, args = col+" > ?", []any{lo}
		default:
			cond, args = col+" > ? AND "+col+" <= ?", []any{lo, hi}
		}
		n := int64(size)
		if last {
			n = -1
		}
		if err := fn(cond, args, n); err != nil {
			return err
		}
		if last {
			return nil
		}
		lo = hi
	}
}

// ChunkSize bounds the number of values bound in one statement.
const ChunkSize = 500

// Chunked calls fn for consecutive slices of s of up to n elements.
func Chunked[T any](s []T, n int, fn func([]T) error) error {
	for start := 0; start < len(s); start += n {
		if err := fn(s[start:min(start+n, len(s))]); err != nil {
			return err
		}
	}
	return nil
}

// Int64Set returns which of ids the integer column col of table holds,
// reading up to ChunkSize ids per query.
func Int64Set(ctx context.Context, db DB, table, col string, ids []any) (map[int64]bool, error) {
	out := make(map[int64]bool, len(ids))
	q := "SELECT " + Quote(col) + " FROM " + Quote(table) + " WHERE " + Quote(col) + " IN ("
	err := Chunked(ids, ChunkSize, func(chunk []any) error {
		rows, err := db.QueryContext(ctx, q+Placeholders(len(chunk))+")", chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out[id] = true
		}
		return rows.Err()
	})
	return out, err
}
