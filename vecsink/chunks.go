package vecsink

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Chunked sidecars (`vec:"…;from=Body;chunk=N;overlap=M"`): one vec0 row
// per chunk of the row's text, at rowid key*outbox.MaxChunks+i, with the
// row's deleted flag and metadata copied to every chunk and the chunk's byte
// span in chunk_start and chunk_end. A row's vector state is a chunk list
// (outbox.EncodeChunks); applying it replaces every chunk of the row.

// ChunkSpan says which chunk of a row's text matched a KNN query: its
// index among the row's chunks and its byte span in the text the vector was
// computed from (outbox.EmbedText of the from= columns), End excluded.
type ChunkSpan struct {
	Index      int
	Start, End int
}

// chunkRange returns the first and last possible rowids of key's chunks.
func chunkRange(key any) (lo, hi int64, err error) {
	k, ok := key.(int64)
	if !ok {
		return 0, 0, fmt.Errorf("%w: key %v (%T) of a chunked vector is not an integer", outbox.ErrBadEvent, key, key)
	}
	if lo, err = outbox.ChunkRowID(k, 0); err != nil {
		return 0, 0, err
	}
	return lo, lo + outbox.MaxChunks - 1, nil
}

// storedChunks returns the rowids of key's chunks, read from vec0's rowid
// shadow table (a range of its integer primary key).
func (t *Table) storedChunks(ctx context.Context, tx outbox.DB, key any) ([]int64, error) {
	lo, hi, err := chunkRange(key)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT rowid FROM `+outbox.Quote(t.Name()+"_rowids")+` WHERE rowid BETWEEN ? AND ?`, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// chunkInsert is the INSERT of one chunk: rowid, vector, [deleted],
// metadata…, chunk_start, chunk_end.
func (t *Table) chunkInsert() string {
	v := t.spec.Vec
	names := []string{"rowid", outbox.Quote(v.Column)}
	exprs := []string{"?", "?"}
	if t.spec.SoftDelete != "" {
		names = append(names, outbox.DeletedColumn)
		exprs = append(exprs, "?")
	}
	for _, m := range v.Metadata {
		names = append(names, outbox.Quote(m.Name))
		exprs = append(exprs, metaExpr(m.Type, "?"))
	}
	names = append(names, outbox.ChunkStartColumn, outbox.ChunkEndColumn)
	exprs = append(exprs, "?", "?")
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", outbox.Quote(t.Name()), strings.Join(names, ", "), strings.Join(exprs, ", "))
}

// applyChunks is Apply for a chunked sidecar: a row that is gone or has no
// vector loses every chunk; a new chunk list replaces every chunk; a change
// without vector refreshes the flag and metadata of every chunk.
func (t *Table) applyChunks(ctx context.Context, tx outbox.DB, changes []outbox.Change) error {
	st := sqlutil.NewStmts(tx)
	defer st.Close()
	ins := t.chunkInsert()
	withDeleted := t.spec.SoftDelete != ""
	for i := range changes {
		c := &changes[i]
		keyErr := func(err error) error {
			return &outbox.KeyError{Table: t.spec.Source, Key: c.Key, Err: fmt.Errorf("vecsink: %s: %w", t.Name(), err)}
		}
		// A key outside the chunked range cannot have chunks (the indexer
		// parks its text): only writing chunks for it fails.
		var stored []int64
		if _, _, err := chunkRange(c.Key); err == nil {
			if stored, err = t.storedChunks(ctx, tx, c.Key); err != nil {
				return keyErr(err)
			}
		}
		var meta []any
		if c.Exists {
			if len(c.Values) != len(t.cols) {
				return keyErr(fmt.Errorf("%w: %d values for %d metadata columns", outbox.ErrBadEvent, len(c.Values), len(t.cols)))
			}
			if withDeleted {
				meta = append(meta, boolInt(c.Deleted))
			}
			meta = append(meta, c.Values...)
		}
		if c.Exists && c.Vec == nil {
			if t.updateMeta == "" {
				continue
			}
			for _, id := range stored {
				if _, err := st.Exec(ctx, t.updateMeta, append(append([]any{}, meta...), id)...); err != nil {
					return keyErr(err)
				}
			}
			continue
		}
		for _, id := range stored {
			if _, err := st.Exec(ctx, t.del, id); err != nil {
				return keyErr(err)
			}
		}
		if !c.Exists || len(c.Vec) == 0 {
			continue
		}
		chunks, err := outbox.DecodeChunks(c.Vec, t.spec.Vec.Dim)
		if err != nil {
			return keyErr(err)
		}
		for j, ch := range chunks {
			id, err := outbox.ChunkRowID(c.Key.(int64), j)
			if err != nil {
				return keyErr(err)
			}
			args := make([]any, 0, 4+len(meta))
			args = append(args, id, ch.Vec)
			args = append(args, meta...)
			args = append(args, ch.Start, ch.End)
			if _, err := st.Exec(ctx, ins, args...); err != nil {
				return keyErr(err)
			}
		}
	}
	return nil
}

// rebuildChunks is Rebuild for a chunked sidecar: drop, create, and fill
// with the newest chunk list the log retains for each live row, in
// key-range batches.
func (t *Table) rebuildChunks(ctx context.Context, tx outbox.DB, opts outbox.RebuildOptions) (int64, error) {
	spec := t.spec
	v := spec.Vec
	if err := Drop(ctx, tx, spec); err != nil {
		return 0, err
	}
	if err := Create(ctx, tx, spec); err != nil {
		return 0, err
	}
	var total int64
	if opts.Progress != nil {
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+outbox.Quote(spec.Source)).Scan(&total); err != nil {
			return 0, fmt.Errorf("vecsink: rebuild %s: count %s: %w", v.Table, spec.Source, err)
		}
	}
	const latest = "temp.oi_rebuild_chunks"
	if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+latest); err != nil {
		return 0, fmt.Errorf("vecsink: rebuild %s: %w", v.Table, err)
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE "+latest+" (key PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID"); err != nil {
		return 0, fmt.Errorf("vecsink: rebuild %s: %w", v.Table, err)
	}
	defer func() {
		_, _ = tx.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+latest)
	}()
	sets, _ := t.stateSQL("")
	_, noneE := t.stateSQL("e.")
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (key, id) SELECT key, max(id) FROM oi_events WHERE tbl = ? AND %s GROUP BY key`, latest, sets), spec.Source); err != nil {
		return 0, fmt.Errorf("vecsink: rebuild %s: latest vectors: %w", v.Table, err)
	}
	ins := t.chunkInsert()
	var done, written int64
	err := sqlutil.KeyChunks(ctx, tx, spec.Source, spec.Key, "s", opts.BatchSize, func(cond string, args []any, rows int64) error {
		from := fmt.Sprintf(`%s s JOIN %s l ON l.key = +s.%s JOIN oi_events e ON e.id = l.id`, outbox.Quote(spec.Source), latest, outbox.Quote(spec.Key))
		n, err := t.fillChunks(ctx, tx, ins, from, cond, noneE, args)
		if err != nil {
			return fmt.Errorf("vecsink: rebuild %s: %w", v.Table, err)
		}
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

// fillChunks writes the chunks of the rows that from (the source as s
// joined to the event that holds each row's vector state as e) yields
// under cond, with args: the rows whose state is none get no chunks, and
// an invalid chunk list none either, as in Rebuild. ins is chunkInsert.
func (t *Table) fillChunks(ctx context.Context, tx outbox.DB, ins, from, cond, none string, args []any) (int64, error) {
	spec := t.spec
	v := spec.Vec
	sel := []string{"s." + outbox.Quote(spec.Key), "e.vec"}
	if spec.SoftDelete != "" {
		sel = append(sel, fmt.Sprintf("(s.%s IS NOT NULL)", outbox.Quote(spec.SoftDelete)))
	}
	for _, m := range v.Metadata {
		sel = append(sel, "s."+outbox.Quote(m.Name))
	}
	q := fmt.Sprintf(`SELECT %s FROM %s WHERE (%s) AND NOT (%s) AND length(e.vec) > 0`, strings.Join(sel, ", "), from, cond, none)
	type row struct {
		key  int64
		vec  []byte
		meta []any
	}
	var batch []row
	r, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	for r.Next() {
		var x row
		x.meta = make([]any, len(sel)-2)
		dest := []any{&x.key, &x.vec}
		for i := range x.meta {
			dest = append(dest, &x.meta[i])
		}
		if err := r.Scan(dest...); err != nil {
			r.Close()
			return 0, err
		}
		batch = append(batch, x)
	}
	err = r.Err()
	r.Close()
	if err != nil {
		return 0, err
	}
	var written int64
	for _, x := range batch {
		chunks, err := outbox.DecodeChunks(x.vec, v.Dim)
		if err != nil {
			continue // an invalid vector: the row gets none, as in Rebuild
		}
		for j, ch := range chunks {
			id, err := outbox.ChunkRowID(x.key, j)
			if err != nil {
				return written, err
			}
			a := append([]any{id, ch.Vec}, x.meta...)
			a = append(a, ch.Start, ch.End)
			if _, err := tx.ExecContext(ctx, ins, a...); err != nil {
				return written, err
			}
			written++
		}
	}
	return written, nil
}
