package vecsink

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Table is the vec0 sidecar of one vector field of a source table, as the
// indexer applies changes to it. It holds no state besides the spec and is
// safe for concurrent use.
type Table struct {
	full  *outbox.Spec // the registry spec
	spec  *outbox.Spec // full.ForVec(this field's VecSpec): spec.Vec is this sidecar
	field string       // oi_events.field of this field's vectors ("" = NULL)
	cols  []string     // source columns: the metadata columns

	update, updateMeta, insert, del string
}

var _ outbox.Sink = (*Table)(nil)

// NewTable returns the vec0 sink of spec's first vector field (spec.Vec),
// which must exist. NewTables returns the sinks of every vector field.
func NewTable(spec *outbox.Spec) (*Table, error) {
	ts, err := NewTables(spec)
	if err != nil {
		return nil, err
	}
	return ts[0], nil
}

// NewTables returns one vec0 sink per vector field of spec (spec.Vec, then
// spec.MoreVecs), which must have at least one.
func NewTables(spec *outbox.Spec) ([]*Table, error) {
	if spec == nil || spec.Vec == nil {
		return nil, fmt.Errorf("%w: no vec sidecar", outbox.ErrBadSpec)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var out []*Table
	for _, v := range spec.VecSpecs() {
		out = append(out, newTable(spec, v))
	}
	return out, nil
}

func newTable(full *outbox.Spec, v *outbox.VecSpec) *Table {
	spec := full.ForVec(v)
	t := &Table{full: full, spec: spec, field: full.EventField(v)}
	keyCol := "rowid"
	if spec.KeyType == outbox.KeyText {
		keyCol = "id"
	}
	// Columns written besides the key and the vector, each with the SQL
	// expression that converts a source value to what vec0 accepts: vec0
	// metadata columns are strictly typed and reject NULL, so NULL becomes
	// the type's zero value.
	var names, exprs []string
	if spec.SoftDelete != "" {
		names = append(names, outbox.DeletedColumn)
		exprs = append(exprs, "?")
	}
	for _, m := range v.Metadata {
		t.cols = append(t.cols, m.Name)
		names = append(names, outbox.Quote(m.Name))
		exprs = append(exprs, metaExpr(m.Type, "?"))
	}
	vecExpr := "?"
	tbl := outbox.Quote(v.Live())
	sets := []string{outbox.Quote(v.Column) + " = " + vecExpr}
	for i := range names {
		sets = append(sets, names[i]+" = "+exprs[i])
	}
	t.update = fmt.Sprintf("UPDATE %s SET %s WHERE %s = ?", tbl, strings.Join(sets, ", "), keyCol)
	if len(names) > 0 {
		t.updateMeta = fmt.Sprintf("UPDATE %s SET %s WHERE %s = ?", tbl, strings.Join(sets[1:], ", "), keyCol)
	}
	t.insert = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", tbl,
		strings.Join(append([]string{keyCol, outbox.Quote(v.Column)}, names...), ", "),
		strings.Join(append([]string{"?", vecExpr}, exprs...), ", "))
	t.del = fmt.Sprintf("DELETE FROM %s WHERE %s = ?", tbl, keyCol)
	return t
}

// metaExpr converts the SQL value arg to a vec0 metadata column type.
func metaExpr(typ, arg string) string {
	switch typ {
	case "integer":
		return "coalesce(CAST(" + arg + " AS INTEGER), 0)"
	case "float":
		return "coalesce(CAST(" + arg + " AS REAL), 0.0)"
	case "boolean":
		return "coalesce(CAST(" + arg + " AS INTEGER) <> 0, 0)"
	default:
		return "coalesce(CAST(" + arg + " AS TEXT), '')"
	}
}

// Spec returns the registry spec of the source table (all its sidecars).
func (t *Table) Spec() *outbox.Spec { return t.full }

// VecSpec returns the vector field this sidecar holds.
func (t *Table) VecSpec() *outbox.VecSpec { return t.spec.Vec }

// Field returns the oi_events.field value of this sidecar's vectors: ""
// (SQL NULL) for the first vector field, the vec0 table name for the others
// (see outbox.Spec.EventField).
func (t *Table) Field() string { return t.field }

// VectorState returns the vector state that events (one key's, in log
// order) leave for this sidecar: nil when none of them sets it, the empty
// slice for "no vector", else the vector. A hard delete means "no vector"
// for every field; so does an insert for a field other than the first
// (the capture trigger's insert event carries the first field's state, ”
// until the plugin puts the vector on it), so that a re-created key never
// inherits an old vector.
func (t *Table) VectorState(events []outbox.Event) []byte {
	for j := len(events) - 1; j >= 0; j-- {
		e := &events[j]
		if e.Op == outbox.OpDelete || (t.field != "" && e.Op == outbox.OpInsert) {
			return []byte{}
		}
		if e.Field == t.field && e.Vec != nil {
			return e.Vec
		}
	}
	return nil
}

// stateSQL returns the SQL condition (on oi_events columns, qualified by
// prefix, e.g. "e.") that selects the events that set this sidecar's
// vector state, and the condition among them that means "no vector"
// besides an empty vec (see VectorState). The field is a vec0 table name,
// a plain identifier (outbox.ValidIdent), so it is safe as a literal.
func (t *Table) stateSQL(prefix string) (sets, none string) {
	del := fmt.Sprint(int64(outbox.OpDelete))
	if t.field == "" {
		return fmt.Sprintf("(%[1]sfield IS NULL AND (%[1]svec IS NOT NULL OR %[1]sop = %[2]s))", prefix, del),
			fmt.Sprintf("%sop = %s", prefix, del)
	}
	ins := fmt.Sprint(int64(outbox.OpInsert))
	return fmt.Sprintf("((%[1]sfield = '%[2]s' AND %[1]svec IS NOT NULL) OR (%[1]sfield IS NULL AND %[1]sop IN (%[3]s, %[4]s)))", prefix, t.field, ins, del),
		fmt.Sprintf("%sop IN (%s, %s)", prefix, ins, del)
}

// Name returns the name of the vec0 table this sink writes: the
// generation its spec names (outbox.VecSpec.Live).
func (t *Table) Name() string { return t.spec.Vec.Live() }

// Columns returns the source columns copied into vec0 metadata columns.
func (t *Table) Columns() []string { return t.cols }

// Exists reports whether the vec0 table exists.
func (t *Table) Exists(ctx context.Context, db outbox.DB) (bool, error) {
	ok, err := sqlutil.TableExists(ctx, db, t.Name())
	if err != nil {
		return false, fmt.Errorf("vecsink: %w", err)
	}
	return ok, nil
}

// Count returns the number of vectors stored.
func (t *Table) Count(ctx context.Context, db outbox.DB) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+outbox.Quote(t.Name())).Scan(&n); err != nil {
		return 0, fmt.Errorf("vecsink: count %s: %w", t.Name(), err)
	}
	return n, nil
}

// vecArg validates a vector from the log and returns it as vec0 accepts it:
// a little-endian float32 BLOB, or JSON text.
func (t *Table) vecArg(b []byte) (any, error) {
	v := t.spec.Vec
	if len(b) > 0 && b[0] == '[' && v.Encoding == outbox.EncodingJSON {
		return string(b), nil
	}
	if len(b)%4 != 0 || len(b)/4 != v.Dim {
		return nil, fmt.Errorf("%w: %d bytes, want %d float32 values (dim=%d)", outbox.ErrBadVector, len(b), v.Dim, v.Dim)
	}
	return b, nil
}

// ValidVector reports whether b (non-empty) is a vector this table accepts.
func (t *Table) ValidVector(b []byte) bool {
	if t.spec.Vec.Chunked() {
		_, err := outbox.DecodeChunks(b, t.spec.Vec.Dim)
		return err == nil
	}
	if t.spec.Vec.Encoding == outbox.EncodingJSON && len(b) > 0 && b[0] == '[' {
		f, err := outbox.DecodeVector(b)
		return err == nil && len(f) == t.spec.Vec.Dim
	}
	_, err := t.vecArg(b)
	return err == nil
}

// Apply brings the vec0 table to the state of changes: a row that no longer
// exists, or has no vector, is deleted; a new vector is written with the
// row's current deleted flag and metadata; a change that carries no vector
// keeps the stored one and refreshes only the flag and metadata. vec0 has no
// INSERT OR REPLACE, so an upsert is an UPDATE of an existing rowid, or an
// INSERT when there is none. Replay is the same operation: every step is
// idempotent.
func (t *Table) Apply(ctx context.Context, tx outbox.DB, changes []outbox.Change, _ outbox.ApplyOptions) error {
	if t.spec.Vec.Chunked() {
		return t.applyChunks(ctx, tx, changes)
	}
	st := sqlutil.NewStmts(tx)
	defer st.Close()
	withDeleted := t.spec.SoftDelete != ""
	args := make([]any, 0, 3+len(t.cols))
	stored, err := t.storedKeys(ctx, tx, changes)
	if err != nil {
		return err
	}
	for i := range changes {
		c := &changes[i]
		keyErr := func(err error) error {
			return &outbox.KeyError{Table: t.spec.Source, Key: c.Key, Err: fmt.Errorf("vecsink: %s: %w", t.Name(), err)}
		}
		if !c.Exists || (c.Vec != nil && len(c.Vec) == 0) {
			if _, err := st.Exec(ctx, t.del, c.Key); err != nil {
				return keyErr(err)
			}
			continue
		}
		if len(c.Values) != len(t.cols) {
			return keyErr(fmt.Errorf("%w: %d values for %d metadata columns", outbox.ErrBadEvent, len(c.Values), len(t.cols)))
		}
		meta := args[:0]
		if withDeleted {
			meta = append(meta, boolInt(c.Deleted))
		}
		meta = append(meta, c.Values...)
		if c.Vec == nil {
			if t.updateMeta == "" {
				continue
			}
			if _, err := st.Exec(ctx, t.updateMeta, append(meta, c.Key)...); err != nil {
				return keyErr(err)
			}
			continue
		}
		vec, err := t.vecArg(c.Vec)
		if err != nil {
			return keyErr(err)
		}
		full := make([]any, 0, len(meta)+2)
		full = append(full, vec)
		full = append(full, meta...)
		if k, _ := c.Key.(int64); stored == nil || stored[k] {
			res, err := st.Exec(ctx, t.update, append(full, c.Key)...)
			if err != nil {
				return keyErr(err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return keyErr(err)
			} else if n > 0 {
				continue
			}
		}
		ins := make([]any, 0, len(full)+1)
		ins = append(ins, c.Key)
		ins = append(ins, full...)
		if _, err := st.Exec(ctx, t.insert, ins...); err != nil {
			return keyErr(err)
		}
	}
	return nil
}

// storedKeys returns which integer keys of the changes that write a vector
// have a row in vec0, read in chunks from vec0's rowid shadow table (whose
// rowid is the vec0 rowid; sqlite-vec deletes an entry with its row), so
// that a new key costs an INSERT instead of an UPDATE that finds nothing
// and then an INSERT. It returns nil (unknown: update first) for text keys
// or when the shadow table is not there.
func (t *Table) storedKeys(ctx context.Context, tx outbox.DB, changes []outbox.Change) (map[int64]bool, error) {
	if t.spec.KeyType != outbox.KeyInteger {
		return nil, nil
	}
	var keys []any
	for i := range changes {
		if c := &changes[i]; c.Exists && len(c.Vec) > 0 {
			keys = append(keys, c.Key)
		}
	}
	if len(keys) < 2 {
		return nil, nil
	}
	shadow := t.Name() + "_rowids"
	if ok, err := sqlutil.TableExists(ctx, tx, shadow); err != nil || !ok {
		return nil, err
	}
	stored, err := sqlutil.Int64Set(ctx, tx, shadow, "rowid", keys)
	if err != nil {
		return nil, fmt.Errorf("vecsink: %s: read stored rowids: %w", t.Name(), err)
	}
	return stored, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// vecSQL returns the SQL condition that a log vector expression is usable
// for this table, and the expression that turns it into what vec0 accepts.
func (t *Table) vecSQL(col string) (valid, value string) {
	v := t.spec.Vec
	if v.Encoding == outbox.EncodingJSON {
		js := fmt.Sprintf("(substr(%[1]s, 1, 1) = x'5b' AND json_valid(CAST(%[1]s AS TEXT)) AND json_array_length(CAST(%[1]s AS TEXT)) = %[2]d)", col, v.Dim)
		return "(" + js + " OR " + fmt.Sprintf("length(%[1]s) = %[2]d", col, 4*v.Dim) + ")",
			fmt.Sprintf("CASE WHEN substr(%[1]s, 1, 1) = x'5b' THEN CAST(%[1]s AS TEXT) ELSE %[1]s END", col)
	}
	return fmt.Sprintf("length(%[1]s) = %[2]d", col, 4*v.Dim), col
}

// Rebuild drops and re-creates the vec0 table, which frees the space of
// every deleted vector (sqlite-vec never reuses it), and fills it with the
// latest valid vector that the event log retains for each source row, with
// the row's current deleted flag and metadata, in key-range batches.
func (t *Table) Rebuild(ctx context.Context, tx outbox.DB, opts outbox.RebuildOptions) (int64, error) {
	if t.spec.Vec.Chunked() {
		return t.rebuildChunks(ctx, tx, opts)
	}
	spec := t.spec
	v := spec.Vec
	if err := Drop(ctx, tx, spec); err != nil {
		return 0, err
	}
	if err := Create(ctx, tx, spec); err != nil {
		return 0, err
	}
	var total int64 // only progress needs it: counting scans the source table
	if opts.Progress != nil {
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+outbox.Quote(spec.Source)).Scan(&total); err != nil {
			return 0, fmt.Errorf("vecsink: rebuild %s: count %s: %w", v.Live(), spec.Source, err)
		}
	}
	valid, value := t.vecSQL("e.vec")
	keyCol := "rowid"
	if spec.KeyType == outbox.KeyText {
		keyCol = "id"
	}
	names := []string{keyCol, outbox.Quote(v.Column)}
	exprs := []string{"s." + outbox.Quote(spec.Key), value}
	if spec.SoftDelete != "" {
		names = append(names, outbox.DeletedColumn)
		exprs = append(exprs, fmt.Sprintf("(s.%s IS NOT NULL)", outbox.Quote(spec.SoftDelete)))
	}
	for _, m := range v.Metadata {
		names = append(names, outbox.Quote(m.Name))
		exprs = append(exprs, metaExpr(m.Type, "s."+outbox.Quote(m.Name)))
	}
	// The newest retained event of each key that carries a vector state,
	// in one grouped pass over the log's (tbl, key, id) only, into a
	// temporary table keyed by the key; the fill joins the source to it and
	// reads the vector by rowid (sorting the vectors themselves would copy
	// every one twice). Only this sidecar's field counts (see stateSQL). A
	// hard delete ends a key's vector (and an insert the vector of a
	// further field): when it is the newest such event, the row (inserted
	// again since) has no vector. Rows whose newest state is "no vector", a hard delete, or
	// invalid get none. The unary + strips the source key's affinity: the
	// log's key has none, and comparing under INTEGER or TEXT affinity
	// would convert it ("007" must not match 7).
	const latest = "temp.oi_rebuild_vec"
	if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+latest); err != nil {
		return 0, fmt.Errorf("vecsink: rebuild %s: %w", v.Live(), err)
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE "+latest+" (key PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID"); err != nil {
		return 0, fmt.Errorf("vecsink: rebuild %s: %w", v.Live(), err)
	}
	defer func() {
		// Best effort: the next rebuild drops it too.
		_, _ = tx.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+latest)
	}()
	sets, _ := t.stateSQL("")
	_, noneE := t.stateSQL("e.")
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (key, id) SELECT key, max(id) FROM oi_events
		WHERE tbl = ? AND %s GROUP BY key`, latest, sets), spec.Source); err != nil {
		return 0, fmt.Errorf("vecsink: rebuild %s: latest vectors: %w", v.Live(), err)
	}
	var done, written int64
	err := sqlutil.KeyChunks(ctx, tx, spec.Source, spec.Key, "s", opts.BatchSize, func(cond string, args []any, rows int64) error {
		q := fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s s JOIN %s l ON l.key = +s.%s JOIN oi_events e ON e.id = l.id WHERE %s AND NOT (%s) AND %s`,
			outbox.Quote(v.Live()), strings.Join(names, ", "), strings.Join(exprs, ", "),
			outbox.Quote(spec.Source), latest, outbox.Quote(spec.Key), cond, noneE, valid)
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("vecsink: rebuild %s: %w", v.Live(), err)
		}
		n, _ := res.RowsAffected()
		written += n
		if rows < 0 {
			done = total
		} else {
			done = min(done+rows, total)
		}
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
		return nil
	})
	return written, err
}
