package vecsink

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
)

var _ outbox.Copier = (*Table)(nil)

// Create creates the vec0 table this sink names (its generation), empty,
// if it does not exist.
func (t *Table) Create(ctx context.Context, db outbox.DB) error {
	q, err := CreateSQL(t.spec)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("vecsink: create %s: %w", t.Name(), err)
	}
	return nil
}

// CopyRange writes the vectors of the source rows in r: for each row, the
// vector of the newest retained event that set its vector state (found
// through r.VecStates), with the row's current deleted flag and metadata.
// Rows whose newest state is "no vector", a hard delete, or a vector this
// table does not accept get none, as in Rebuild. A chunked table gets one
// entry per chunk of each row's chunk list.
func (t *Table) CopyRange(ctx context.Context, tx outbox.DB, r outbox.KeyRange) (int64, error) {
	spec := t.spec
	v := spec.Vec
	_, none := t.stateSQL("e.")
	if v.Chunked() {
		// One vec0 row per chunk of each row's chunk list.
		from := fmt.Sprintf(`%s s CROSS JOIN %s l ON l.field = ? AND l.key = +s.%s CROSS JOIN oi_events e ON e.id = l.id`,
			outbox.Quote(spec.Source), outbox.Quote(r.VecStates), outbox.Quote(spec.Key))
		n, err := t.fillChunks(ctx, tx, t.chunkInsert(), from, r.Cond, none, append([]any{t.field}, r.Args...))
		if err != nil {
			return n, fmt.Errorf("vecsink: copy into %s: %w", t.Name(), err)
		}
		return n, nil
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
	// The unary + strips the source key's affinity (see Rebuild). CROSS
	// JOIN keeps the source's key range in the outer loop: left to itself
	// the planner scans the whole vector-state table instead.
	q := fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s s CROSS JOIN %s l ON l.field = ? AND l.key = +s.%s CROSS JOIN oi_events e ON e.id = l.id WHERE (%s) AND NOT (%s) AND %s`,
		outbox.Quote(t.Name()), strings.Join(names, ", "), strings.Join(exprs, ", "),
		outbox.Quote(spec.Source), outbox.Quote(r.VecStates), outbox.Quote(spec.Key), r.Cond, none, valid)
	res, err := tx.ExecContext(ctx, q, append([]any{t.field}, r.Args...)...)
	if err != nil {
		return 0, fmt.Errorf("vecsink: copy into %s: %w", t.Name(), err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// StatesSQL returns the statement that folds the events of the log in
// (?, ?] (ids) of source into states, the vector-state table of an online
// rebuild (outbox.VecStatesTable): for each key, the id of its newest
// event that sets this sidecar's vector state. Its arguments are source,
// the lower and the upper id.
func (t *Table) StatesSQL(states string) string {
	sets, _ := t.stateSQL("")
	return fmt.Sprintf(`INSERT INTO %s (field, key, id) SELECT '%s', key, max(id) FROM oi_events
		WHERE tbl = ? AND id > ? AND id <= ? AND %s GROUP BY key
		ON CONFLICT (field, key) DO UPDATE SET id = max(id, excluded.id)`, outbox.Quote(states), t.field, sets)
}
