package ftssink

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Table is the FTS5 sidecar of one source table, as the indexer applies
// changes to it. It holds no state besides the spec and is safe for
// concurrent use.
type Table struct {
	spec *outbox.Spec
	cols []string // source columns, in FTS5 column order

	insert, del, extDelete string
}

var _ outbox.Sink = (*Table)(nil)

// NewTable returns the FTS5 sink of spec, which must have an fts sidecar.
func NewTable(spec *outbox.Spec) (*Table, error) {
	if spec == nil || spec.FTS == nil {
		return nil, fmt.Errorf("%w: no fts sidecar", outbox.ErrBadSpec)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	f := spec.FTS
	t := &Table{spec: spec}
	names := []string{"rowid"}
	for _, c := range f.Columns {
		t.cols = append(t.cols, c.Source)
		names = append(names, outbox.Quote(c.Name))
	}
	tbl := outbox.Quote(f.Live())
	ph := outbox.Placeholders(len(names))
	if f.Mode == outbox.ModeExternal {
		t.extDelete = fmt.Sprintf("INSERT INTO %s (%s, %s) VALUES ('delete', %s)", tbl, tbl, strings.Join(names, ", "), ph)
	} else {
		t.del = fmt.Sprintf("DELETE FROM %s WHERE rowid = ?", tbl)
		if spec.SoftDelete != "" {
			names = append(names, outbox.DeletedColumn)
			ph += ", ?"
		}
	}
	t.insert = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", tbl, strings.Join(names, ", "), ph)
	return t, nil
}

// Spec returns the registry spec of the table.
func (t *Table) Spec() *outbox.Spec { return t.spec }

// Name returns the name of the FTS5 table this sink writes: the
// generation its spec names (outbox.FTSSpec.Live).
func (t *Table) Name() string { return t.spec.FTS.Live() }

// Columns returns the source columns of the FTS5 columns, in order.
func (t *Table) Columns() []string { return t.cols }

// Exists reports whether the FTS5 table exists.
func (t *Table) Exists(ctx context.Context, db outbox.DB) (bool, error) {
	ok, err := sqlutil.TableExists(ctx, db, t.Name())
	if err != nil {
		return false, fmt.Errorf("ftssink: %w", err)
	}
	return ok, nil
}

// Count returns the number of indexed rows (documents).
func (t *Table) Count(ctx context.Context, db outbox.DB) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+outbox.Quote(t.Name()+"_docsize")).Scan(&n); err != nil {
		return 0, fmt.Errorf("ftssink: count %s: %w", t.Name(), err)
	}
	return n, nil
}

// rowids returns the FTS5 rowid of every change's key: the key itself for
// integer keys, the oi_keymap rowid for text keys (assigned for rows that
// exist; a key with no rowid was never indexed and is absent).
func (t *Table) rowids(ctx context.Context, tx outbox.DB, changes []outbox.Change) (map[any]int64, error) {
	out := make(map[any]int64, len(changes))
	if t.spec.KeyType == outbox.KeyInteger {
		for _, c := range changes {
			k, ok := c.Key.(int64)
			if !ok {
				return nil, &outbox.KeyError{Table: t.spec.Source, Key: c.Key, Err: fmt.Errorf("%w: key %v is a %T, the table has integer keys", outbox.ErrBadEvent, c.Key, c.Key)}
			}
			out[c.Key] = k
		}
		return out, nil
	}
	var create, lookup []string
	for _, c := range changes {
		k, ok := c.Key.(string)
		if !ok {
			return nil, &outbox.KeyError{Table: t.spec.Source, Key: c.Key, Err: fmt.Errorf("%w: key %v is a %T, the table has text keys", outbox.ErrBadEvent, c.Key, c.Key)}
		}
		if c.Exists {
			create = append(create, k)
		} else {
			lookup = append(lookup, k)
		}
	}
	for i, keys := range [][]string{create, lookup} {
		m, err := outbox.KeyRowIDs(ctx, tx, t.spec.Source, keys, i == 0)
		if err != nil {
			return nil, fmt.Errorf("ftssink: %w", err)
		}
		for k, rid := range m {
			out[k] = rid
		}
	}
	return out, nil
}

// indexed returns the set of rowids that have a document in the index.
func (t *Table) indexed(ctx context.Context, tx outbox.DB, rowids map[any]int64) (map[int64]bool, error) {
	ids := make([]any, 0, len(rowids))
	for _, r := range rowids {
		ids = append(ids, r)
	}
	out, err := sqlutil.Int64Set(ctx, tx, t.Name()+"_docsize", "id", ids)
	if err != nil {
		return nil, fmt.Errorf("ftssink: %s: read indexed rowids: %w", t.Name(), err)
	}
	return out, nil
}

// Apply brings the FTS5 table to the state of changes.
//
// In-table and contentless tables: the rowid is deleted and, if the source
// row exists, its current values are inserted with its deleted flag.
//
// External content: if the rowid is indexed, its tokens are removed with
// FTS5's 'delete' command given the before-image of the key's first pending
// event (the text that was indexed), then the current values are indexed.
// An indexed key whose event has no before-image means the index drifted
// from the source (a write that bypassed gorm): that key fails with
// outbox.ErrDrift and only a rebuild repairs it. A replay skips external
// content tables entirely: old before-images do not describe what is
// indexed now.
func (t *Table) Apply(ctx context.Context, tx outbox.DB, changes []outbox.Change, opts outbox.ApplyOptions) error {
	external := t.spec.FTS.Mode == outbox.ModeExternal
	if external && opts.Replay {
		return nil
	}
	rowids, err := t.rowids(ctx, tx, changes)
	if err != nil {
		return err
	}
	var indexed map[int64]bool
	if external {
		if indexed, err = t.indexed(ctx, tx, rowids); err != nil {
			return err
		}
	}
	st := sqlutil.NewStmts(tx)
	defer st.Close()
	withDeleted := !external && t.spec.SoftDelete != ""
	args := make([]any, 0, len(t.cols)+2)
	var gone []string
	for i := range changes {
		c := &changes[i]
		keyErr := func(err error) error {
			return &outbox.KeyError{Table: t.spec.Source, Key: c.Key, Err: fmt.Errorf("ftssink: %s: %w", t.Name(), err)}
		}
		rid, has := rowids[c.Key]
		if !has {
			continue // a text key that never had a rowid was never indexed and does not exist
		}
		if external {
			if indexed[rid] {
				if c.Old == nil {
					return keyErr(fmt.Errorf("%w: key %v is indexed but its event carries no before-image", outbox.ErrDrift, c.Key))
				}
				if len(c.Old) != len(t.cols) {
					return keyErr(fmt.Errorf("%w: before-image has %d values for %d columns", outbox.ErrBadEvent, len(c.Old), len(t.cols)))
				}
				a := append(append(args[:0], rid), c.Old...)
				if _, err := st.Exec(ctx, t.extDelete, a...); err != nil {
					return keyErr(err)
				}
			}
		} else if _, err := st.Exec(ctx, t.del, rid); err != nil {
			return keyErr(err)
		}
		if !c.Exists {
			if k, ok := c.Key.(string); ok {
				gone = append(gone, k)
			}
			continue
		}
		if len(c.Values) != len(t.cols) {
			return keyErr(fmt.Errorf("%w: %d values for %d columns", outbox.ErrBadEvent, len(c.Values), len(t.cols)))
		}
		a := append(append(args[:0], rid), c.Values...)
		if withDeleted {
			a = append(a, boolInt(c.Deleted))
		}
		if _, err := st.Exec(ctx, t.insert, a...); err != nil {
			return keyErr(err)
		}
	}
	if len(gone) > 0 && !opts.KeepKeyMap {
		if err := outbox.DeleteKeyRowIDs(ctx, tx, t.spec.Source, gone); err != nil {
			return fmt.Errorf("ftssink: %w", err)
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Rebuild drops and re-creates the FTS5 table and indexes every source row
// (soft-deleted ones too, flagged). External content uses FTS5's 'rebuild'
// command, which reads the source table itself; the other modes insert the
// current source values in key-range batches. For text keys the rowid map
// is brought in line with the source rows first.
func (t *Table) Rebuild(ctx context.Context, tx outbox.DB, opts outbox.RebuildOptions) (int64, error) {
	n, err := t.rebuild(ctx, tx, opts)
	if err != nil {
		return n, err
	}
	// Filled with large leaves; what the writers add from now on gets
	// small ones.
	return n, t.Fill(ctx, tx, false)
}

func (t *Table) rebuild(ctx context.Context, tx outbox.DB, opts outbox.RebuildOptions) (int64, error) {
	spec := t.spec
	f := spec.FTS
	if err := Drop(ctx, tx, spec); err != nil {
		return 0, err
	}
	if err := Create(ctx, tx, spec); err != nil {
		return 0, err
	}
	if err := t.Fill(ctx, tx, true); err != nil {
		return 0, err
	}
	src, key := outbox.Quote(spec.Source), outbox.Quote(spec.Key)
	var total int64 // the result of an external rebuild; otherwise only progress needs it: counting scans the source table
	if opts.Progress != nil || f.Mode == outbox.ModeExternal {
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+src).Scan(&total); err != nil {
			return 0, fmt.Errorf("ftssink: rebuild %s: count %s: %w", f.Live(), spec.Source, err)
		}
	}
	tbl := outbox.Quote(f.Live())
	if f.Mode == outbox.ModeExternal {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES ('rebuild')", tbl, tbl)); err != nil {
			return 0, fmt.Errorf("ftssink: rebuild %s: %w", f.Live(), err)
		}
		if opts.Progress != nil {
			opts.Progress(total, total)
		}
		return total, nil
	}
	rowid := "s." + key
	join := ""
	var pre []any
	if spec.KeyType == outbox.KeyText {
		for _, q := range []string{
			`DELETE FROM oi_keymap WHERE tbl = ? AND key NOT IN (SELECT ` + key + ` FROM ` + src + `)`,
			`INSERT OR IGNORE INTO oi_keymap (tbl, key) SELECT ?, ` + key + ` FROM ` + src,
		} {
			if _, err := tx.ExecContext(ctx, q, spec.Source); err != nil {
				return 0, fmt.Errorf("ftssink: rebuild %s: key map: %w", f.Live(), err)
			}
		}
		rowid = "m.rid"
		join = " JOIN oi_keymap m ON m.tbl = ? AND m.key = s." + key
		pre = []any{spec.Source}
	}
	names := []string{"rowid"}
	exprs := []string{rowid}
	for _, c := range f.Columns {
		names = append(names, outbox.Quote(c.Name))
		exprs = append(exprs, "s."+outbox.Quote(c.Source))
	}
	if spec.SoftDelete != "" {
		names = append(names, outbox.DeletedColumn)
		exprs = append(exprs, fmt.Sprintf("(s.%s IS NOT NULL)", outbox.Quote(spec.SoftDelete)))
	}
	var done, written int64
	err := sqlutil.KeyChunks(ctx, tx, spec.Source, spec.Key, "s", opts.BatchSize, func(cond string, args []any, rows int64) error {
		q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s s%s WHERE %s", tbl, strings.Join(names, ", "), strings.Join(exprs, ", "), src, join, cond)
		res, err := tx.ExecContext(ctx, q, append(append([]any{}, pre...), args...)...)
		if err != nil {
			return fmt.Errorf("ftssink: rebuild %s: %w", f.Live(), err)
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
