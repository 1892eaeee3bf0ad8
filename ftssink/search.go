package ftssink

import (
	"context"
	"database/sql"
	"errors"
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
// db.Table). The statement SearchSQL returns is run on db's connection (or
// transaction), then the models are loaded with one gorm query
// (WHERE key IN …) on db, so db's Preload, Select and other settings apply;
// conditions on db filter the loaded models, which can then be fewer than
// the limit. Rows whose source
// row no longer exists are dropped. Soft-deleted rows are excluded unless
// IncludeDeleted is given (in external-content mode the source's
// soft-delete column is read live; in the other modes the indexed flag).
//
// WithFilter, WithJoin and WithOrderBy apply before the limit (see them);
// WithSelect is refused (use SearchSQL).
//
// Search sees what the indexer has applied; call the indexer's Sync first
// for read-your-writes.
//
// Errors wrap ErrNoFTS (no fts5 tag), outbox.ErrNotRegistered (not
// migrated), ErrInvalidQuery, ErrQuerySyntax, ErrInvalidOption or
// ErrNoContent.
func Search[T any](ctx context.Context, db *gorm.DB, q Query, opts ...Option) ([]Hit[T], error) {
	t, err := resolve[T](ctx, db)
	if err != nil {
		return nil, err
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

// resolve finds T's registry spec and checks that it has an FTS5 sidecar.
func resolve[T any](ctx context.Context, db *gorm.DB) (*gormq.Target, error) {
	t, err := gormq.Resolve(ctx, db, new(T))
	if err != nil {
		return nil, fmt.Errorf("ftssink: search: %w", err)
	}
	if t.Spec.FTS == nil {
		return nil, fmt.Errorf("%w: model %s (table %s) has no fts5 tag", ErrNoFTS, t.Schema.Name, t.Table)
	}
	return t, nil
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
	if len(cfg.selects) > 0 {
		return nil, fmt.Errorf("%w: table %s: WithSelect changes the shape of the rows: use SearchSQL and run it with db.Raw(sql, args...).Scan(&rows)", ErrInvalidOption, f.Table)
	}
	stmt, args, expr, err := buildSearch(spec, cfg, q)
	if err != nil {
		return nil, err
	}
	out, err := scanMatches(ctx, db, spec, cfg, stmt, args)
	if err != nil {
		if errors.Is(err, errFragment) {
			return nil, fmt.Errorf("%w: table %s: WithFilter, WithJoin or WithOrderBy SQL: %w", ErrInvalidOption, f.Table, err)
		}
		if isQueryError(err) {
			return nil, fmt.Errorf("%w: table %s, expression %q: %w", ErrQuerySyntax, f.Table, expr, err)
		}
		return nil, fmt.Errorf("ftssink: search %s: %w", f.Table, err)
	}
	return out, nil
}

// errFragment marks a statement that SQLite could not compile although its
// own parts are generated from a validated spec: the caller's fragments are
// at fault.
var errFragment = errors.New("statement does not compile")

// preparer is implemented by *sql.DB, *sql.Tx, *sql.Conn and gorm's pools.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// runQuery runs the statement. With caller fragments it is prepared first:
// SQLite compiles the fragments then, while FTS5 parses the MATCH
// expression (a bound argument) only when the statement runs, so a failure
// to prepare is the fragments' (unless the sidecar itself is missing).
func runQuery(ctx context.Context, db outbox.DB, spec *outbox.Spec, cfg *searchConfig, q string, args []any) (*sql.Rows, error) {
	p, ok := db.(preparer)
	if !cfg.shaped() || !ok {
		return db.QueryContext(ctx, q, args...)
	}
	st, err := p.PrepareContext(ctx, q)
	if err != nil {
		if c, ok := engine.ErrorCode(err); !ok || c != engine.CodeError || strings.Contains(err.Error(), "no such table: "+spec.FTS.Live()) {
			return nil, err // busy, cancelled, or the sidecar is missing
		}
		return nil, fmt.Errorf("%w: %w", errFragment, err)
	}
	defer st.Close() // the rows keep what they need: closing waits for them in database/sql
	return st.QueryContext(ctx, args...)
}

func scanMatches(ctx context.Context, db outbox.DB, spec *outbox.Spec, cfg *searchConfig, q string, args []any) ([]Match, error) {
	f := spec.FTS
	rows, err := runQuery(ctx, db, spec, cfg, q, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	nExtra := len(cfg.snippets) + len(cfg.highlights)
	extra := make([]sql.NullString, nExtra)
	var out []Match
	seen := map[any]bool{}
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
		if seen[k] { // a join to several rows
			continue
		}
		seen[k] = true
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

// buildSearch validates the options and the query and builds the
// statement of Search, SearchSQL and Matches (see SearchSQL). It also
// returns the rendered MATCH expression, for error messages.
func buildSearch(spec *outbox.Spec, cfg *searchConfig, q Query) (stmt string, args []any, expr string, err error) {
	f := spec.FTS
	snipCols, hlCols, err := cfg.validate(spec)
	if err != nil {
		return "", nil, "", err
	}
	expr, err = renderQuery(q, spec)
	if err != nil {
		return "", nil, "", fmt.Errorf("ftssink: search %s: %w", f.Table, err)
	}
	// The live generation's table (see outbox.GenName) is aliased to the
	// sidecar's name, so that caller fragments that name it keep working;
	// FTS5's hidden column, which MATCH and the auxiliary functions take,
	// is named after the physical table.
	fts := outbox.Quote(f.Table)
	from, hid := fts, fts
	if live := f.Live(); live != f.Table {
		from = outbox.Quote(live) + " AS " + fts
		hid = fts + "." + outbox.Quote(live)
	}
	key := fts + ".rowid"
	if spec.KeyType == outbox.KeyText {
		key = "km.key"
	}
	var sb strings.Builder
	sb.WriteString("SELECT " + key + " AS " + outbox.Quote(spec.Key) + ", bm25(" + hid)
	for _, w := range cfg.weights {
		sb.WriteString(", ?")
		args = append(args, w)
	}
	sb.WriteString(") AS " + RankColumn)
	for i, s := range cfg.snippets {
		sb.WriteString(", snippet(" + hid + ", " + strconv.Itoa(snipCols[i]) + ", ?, ?, ?, ?) AS " + outbox.Quote("snippet_"+f.Columns[snipCols[i]].Name))
		args = append(args, s.before, s.after, s.ellipsis, s.tokens)
	}
	for i, h := range cfg.highlights {
		sb.WriteString(", highlight(" + hid + ", " + strconv.Itoa(hlCols[i]) + ", ?, ?) AS " + outbox.Quote("highlight_"+f.Columns[hlCols[i]].Name))
		args = append(args, h.before, h.after)
	}
	for _, s := range cfg.selects {
		sb.WriteString(", " + s)
	}
	sb.WriteString(" FROM " + from)
	if spec.KeyType == outbox.KeyText {
		sb.WriteString(" CROSS JOIN " + outbox.KeyMapTable + " AS km ON km.rid = " + fts + ".rowid AND km.tbl = ?")
		args = append(args, spec.Source)
	}
	if cfg.shaped() {
		// CROSS JOIN keeps the FTS5 table in the outer loop: the MATCH
		// drives the query, the source is looked up by primary key.
		src := outbox.Quote(spec.Source)
		sb.WriteString(" CROSS JOIN " + src + " ON " + src + "." + outbox.Quote(spec.Key) + " = " + key)
	}
	for _, j := range cfg.joins {
		sb.WriteString(" " + j.sql)
		args = append(args, j.args...)
	}
	sb.WriteString(" WHERE " + hid + " MATCH ?")
	args = append(args, expr)
	if spec.SoftDelete != "" && !cfg.includeDeleted {
		if f.Mode == outbox.ModeExternal {
			sb.WriteString(" AND " + fts + "." + outbox.Quote(spec.SoftDelete) + " IS NULL")
		} else {
			sb.WriteString(" AND " + fts + "." + outbox.DeletedColumn + " = 0")
		}
	}
	for _, x := range cfg.filters {
		sb.WriteString(" AND (" + x.sql + ")")
		args = append(args, x.args...)
	}
	sb.WriteString(" ORDER BY ")
	for _, o := range cfg.orders {
		sb.WriteString(o.sql + ", ")
		args = append(args, o.args...)
	}
	sb.WriteString(RankColumn + ", " + fts + ".rowid LIMIT ? OFFSET ?")
	args = append(args, cfg.limit, cfg.offset)
	return sb.String(), args, expr, nil
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
