package ftssink

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/gormq"
	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// Search runs the full-text query q on the FTS5 sidecar of model T and
// returns the matching models ranked by bm25, best first (see Hit), with the
// snippets and highlights asked for.
//
// T is a gorm model migrated by gormplugin.Migrate with fts5 tags; its table
// name comes from gorm's schema parser with db's naming strategy (or from
// db.Table). The sidecar is queried on db's connection (or transaction),
// then the models are loaded with one gorm query (WHERE key IN …) on db, so
// db's Preload, Select and other settings apply; conditions on db filter the
// loaded models, which can then be fewer than the limit. Rows whose source
// row no longer exists are dropped. Soft-deleted rows are excluded unless
// IncludeDeleted is given (in external-content mode the source's
// soft-delete column is read live; in the other modes the indexed flag).
//
// Search sees what the indexer has applied; call the indexer's Sync first
// for read-your-writes.
//
// Errors wrap ErrNoFTS (no fts5 tag), outbox.ErrNotRegistered (not
// migrated), ErrInvalidQuery, ErrQuerySyntax, ErrInvalidOption or
// ErrNoContent.
func Search[T any](ctx context.Context, db *gorm.DB, q Query, opts ...Option) ([]Hit[T], error) {
	t, err := gormq.Resolve(ctx, db, new(T))
	if err != nil {
		return nil, fmt.Errorf("ftssink: search: %w", err)
	}
	if t.Spec.FTS == nil {
		return nil, fmt.Errorf("%w: model %s (table %s) has no fts5 tag", ErrNoFTS, t.Schema.Name, t.Table)
	}
	cfg := newSearchConfig(opts)
	ms, err := matches(ctx, t.Conn, t.Spec, q, cfg)
	if err != nil {
		return nil, err
	}
	keys := make([]any, len(ms))
	for i, m := range ms {
		keys[i] = m.Key
	}
	models, ok, err := gormq.Load[T](ctx, db, t, keys, cfg.includeDeleted)
	if err != nil {
		return nil, fmt.Errorf("ftssink: search: %w", err)
	}
	out := make([]Hit[T], 0, len(ms))
	for i, m := range ms {
		if ok[i] {
			out = append(out, Hit[T]{Model: models[i], Rank: m.Rank, Snippets: m.Snippets, Highlights: m.Highlights})
		}
	}
	return out, nil
}

// Matches is Search without models: it returns the primary keys (int64 or
// string) of the best matches of q in spec's FTS5 sidecar, with their ranks,
// snippets and highlights. It needs no Go model type (db may be a *sql.DB,
// a *sql.Tx or a gorm ConnPool); spec usually comes from outbox.LoadSpec.
// The keys are those the indexer has applied: rows deleted since may still be
// returned.
func Matches(ctx context.Context, db outbox.DB, spec *outbox.Spec, q Query, opts ...Option) ([]Match, error) {
	if spec == nil || spec.FTS == nil {
		src := "<nil spec>"
		if spec != nil {
			src = spec.Source
		}
		return nil, fmt.Errorf("%w: table %s", ErrNoFTS, src)
	}
	return matches(ctx, db, spec, q, newSearchConfig(opts))
}

func matches(ctx context.Context, db outbox.DB, spec *outbox.Spec, q Query, cfg *searchConfig) ([]Match, error) {
	f := spec.FTS
	snipCols, hlCols, err := cfg.validate(spec)
	if err != nil {
		return nil, err
	}
	expr, err := renderQuery(q, spec)
	if err != nil {
		return nil, fmt.Errorf("ftssink: search %s: %w", f.Table, err)
	}
	query, args := searchSQL(spec, cfg, expr, snipCols, hlCols)
	out, err := scanMatches(ctx, db, spec, cfg, query, args)
	if err != nil {
		if isQueryError(err) {
			return nil, fmt.Errorf("%w: table %s, expression %q: %w", ErrQuerySyntax, f.Table, expr, err)
		}
		return nil, fmt.Errorf("ftssink: search %s: %w", f.Table, err)
	}
	return out, nil
}

func scanMatches(ctx context.Context, db outbox.DB, spec *outbox.Spec, cfg *searchConfig, query string, args []any) ([]Match, error) {
	f := spec.FTS
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	nExtra := len(cfg.snippets) + len(cfg.highlights)
	extra := make([]sql.NullString, nExtra)
	var out []Match
	for rows.Next() {
		var (
			key  any
			rank float64
		)
		dest := make([]any, 0, 2+nExtra)
		dest = append(dest, &key, &rank)
		for i := range extra {
			dest = append(dest, &extra[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		k, err := gormq.ScanKey(key)
		if err != nil {
			return nil, err
		}
		m := Match{Key: k, Rank: rank}
		for i, s := range cfg.snippets {
			if m.Snippets == nil {
				m.Snippets = make(map[string]string, len(cfg.snippets))
			}
			m.Snippets[columnName(f, s.column)] = extra[i].String
		}
		for i, h := range cfg.highlights {
			if m.Highlights == nil {
				m.Highlights = make(map[string]string, len(cfg.highlights))
			}
			m.Highlights[columnName(f, h.column)] = extra[len(cfg.snippets)+i].String
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// columnName returns the table's spelling of a column name given in any case.
func columnName(f *outbox.FTSSpec, name string) string {
	for _, c := range f.Columns {
		if strings.EqualFold(c.Name, name) {
			return c.Name
		}
	}
	return name
}

// searchSQL builds the query on the FTS5 sidecar:
//
//	SELECT fts.rowid | km.key, bm25(fts, ?…) AS oi_rank, snippet(…)…, highlight(…)…
//	FROM fts [CROSS JOIN oi_keymap AS km ON km.rid = fts.rowid AND km.tbl = ?]
//	WHERE fts MATCH ? [AND <not deleted>]
//	ORDER BY oi_rank, fts.rowid LIMIT ? OFFSET ?
func searchSQL(spec *outbox.Spec, cfg *searchConfig, expr string, snipCols, hlCols []int) (string, []any) {
	f := spec.FTS
	fts := outbox.Quote(f.Table)
	var sb strings.Builder
	var args []any
	sb.WriteString("SELECT ")
	if spec.KeyType == outbox.KeyText {
		sb.WriteString("km.key")
	} else {
		sb.WriteString(fts + ".rowid")
	}
	sb.WriteString(", bm25(" + fts)
	for _, w := range cfg.weights {
		sb.WriteString(", ?")
		args = append(args, w)
	}
	sb.WriteString(") AS oi_rank")
	for i, s := range cfg.snippets {
		sb.WriteString(", snippet(" + fts + ", " + strconv.Itoa(snipCols[i]) + ", ?, ?, ?, ?)")
		args = append(args, s.before, s.after, s.ellipsis, s.tokens)
	}
	for i, h := range cfg.highlights {
		sb.WriteString(", highlight(" + fts + ", " + strconv.Itoa(hlCols[i]) + ", ?, ?)")
		args = append(args, h.before, h.after)
	}
	sb.WriteString(" FROM " + fts)
	if spec.KeyType == outbox.KeyText {
		sb.WriteString(" CROSS JOIN " + outbox.KeyMapTable + " AS km ON km.rid = " + fts + ".rowid AND km.tbl = ?")
		args = append(args, spec.Source)
	}
	sb.WriteString(" WHERE " + fts + " MATCH ?")
	args = append(args, expr)
	if spec.SoftDelete != "" && !cfg.includeDeleted {
		if f.Mode == outbox.ModeExternal {
			sb.WriteString(" AND " + fts + "." + outbox.Quote(spec.SoftDelete) + " IS NULL")
		} else {
			sb.WriteString(" AND " + fts + "." + outbox.DeletedColumn + " = 0")
		}
	}
	sb.WriteString(" ORDER BY oi_rank, " + fts + ".rowid LIMIT ? OFFSET ?")
	args = append(args, cfg.limit, cfg.offset)
	return sb.String(), args
}

// isQueryError reports whether err is FTS5 refusing the MATCH expression.
// The statement is generated from a validated spec and validated options,
// so a plain SQLITE_ERROR from it comes from the expression (FTS5's messages
// vary: "fts5: syntax error near …", "unterminated string", "no such column:
// x", "expected integer, got …"), except for a missing sidecar table.
func isQueryError(err error) bool {
	if c, ok := engine.ErrorCode(err); !ok || c != engine.CodeError {
		return false
	}
	return !strings.Contains(err.Error(), "no such table")
}
