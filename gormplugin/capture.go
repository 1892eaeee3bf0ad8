package gormplugin

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
)

// normKey converts a key value (a struct field, a map value or a scanned
// column) to the event form: int64 or string. ok is false for nil and for
// zero integer keys (not yet assigned).
func normKey(v any) (key any, ok bool) {
	if v == nil {
		return nil, false
	}
	if val, isValuer := v.(driver.Valuer); isValuer {
		dv, err := val.Value()
		if err != nil || dv == nil {
			return nil, false
		}
		v = dv
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), rv.Int() != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := rv.Uint()
		if u > 1<<63-1 {
			return nil, false
		}
		return int64(u), u != 0
	case reflect.String:
		return rv.String(), true
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return string(rv.Bytes()), true
		}
	}
	return nil, false
}

// vectorOf converts a vector value from a struct field or a map to
// []float32.
func vectorOf(v any) ([]float32, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case vecsink.Embedding:
		return x, nil
	case []float32:
		return x, nil
	case *vecsink.Embedding:
		if x == nil {
			return nil, nil
		}
		return *x, nil
	case *[]float32:
		if x == nil {
			return nil, nil
		}
		return *x, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, nil
		}
		rv = rv.Elem()
	}
	if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Float32 {
		return rv.Convert(float32sType).Interface().([]float32), nil
	}
	return nil, fmt.Errorf("%w: a vector must be vecsink.Embedding or []float32, got %T", ErrInvalidVector, v)
}

// encodeVec validates and encodes a vector of the first vector field for
// an event.
func (m *model) encodeVec(v any) ([]byte, error) { return m.encodeVecOf(0, v) }

// encodeVecOf validates and encodes a vector of vector field j for an
// event; errors name the field.
func (m *model) encodeVecOf(j int, v any) ([]byte, error) {
	vf := &m.vecs[j]
	f, err := vectorOf(v)
	if err != nil {
		return nil, fmt.Errorf("gormplugin: %s.%s: %w", m.spec.Source, vf.f.Name, err)
	}
	if len(f) > 0 && vf.spec.Derived() {
		return nil, fmt.Errorf("gormplugin: %s.%s: %w (from=%s)", m.spec.Source, vf.f.Name, ErrDerivedVector, strings.Join(vf.spec.From, ","))
	}
	b, err := outbox.EncodeVector(f, vf.spec.Dim, vf.spec.Encoding)
	if err != nil {
		return nil, fmt.Errorf("gormplugin: %s.%s: %w", m.spec.Source, vf.f.Name, err)
	}
	return b, nil
}

// vecSelected reports whether Select/Omit lists let vector field j
// through: explicit is true when it (or "*") was named in Select.
func (m *model) vecSelected(stmt *gorm.Statement, j int) (selected, explicit bool) {
	names := m.vecs[j].names
	for _, o := range stmt.Omits {
		if names[o] || o == "*" {
			return false, false
		}
	}
	if len(stmt.Selects) == 0 {
		return true, false
	}
	for _, s := range stmt.Selects {
		if names[s] || s == "*" {
			return true, true
		}
	}
	return false, false
}

// vecKeys returns the keys of a map that designate a vector, if any.
func (m *model) vecKeys(mp map[string]any) []string {
	var ks []string
	for k := range mp {
		if m.vecNames[k] {
			ks = append(ks, k)
		}
	}
	return ks
}

// logHead returns the id of the last event in the log, on the statement's
// connection (inside the write's transaction, so no other writer appends
// until it commits): every event the statement's triggers write is above it.
func logHead(db *gorm.DB) (int64, error) {
	var h int64
	err := db.Statement.ConnPool.QueryRowContext(db.Statement.Context, `SELECT coalesce(max(id), 0) FROM oi_events`).Scan(&h)
	if err != nil {
		return 0, fmt.Errorf("read the outbox head (did you run gormplugin.Migrate?): %w", err)
	}
	return h, nil
}

// changedKeys returns, in log order and without duplicates, the keys of m's
// table that the capture triggers recorded above head with one of ops: the
// rows the statement really wrote.
func changedKeys(db *gorm.DB, m *model, head int64, ops ...outbox.Op) ([]any, error) {
	q := `SELECT key FROM oi_events WHERE id > ? AND tbl = ? AND op IN (` + outbox.Placeholders(len(ops)) + `) ORDER BY id`
	args := []any{head, m.spec.Source}
	for _, o := range ops {
		args = append(args, int64(o))
	}
	rows, err := db.Statement.ConnPool.QueryContext(db.Statement.Context, q, args...)
	if err != nil {
		return nil, fmt.Errorf("gormplugin: rows written to %s: %w", m.spec.Source, err)
	}
	defer rows.Close()
	var out []any
	seen := map[any]bool{}
	for rows.Next() {
		var k any
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("gormplugin: rows written to %s: %w", m.spec.Source, err)
		}
		nk, err := outbox.NormalizeKey(k)
		if err != nil {
			return nil, fmt.Errorf("gormplugin: rows written to %s: %w", m.spec.Source, err)
		}
		if !seen[nk] {
			seen[nk] = true
			out = append(out, nk)
		}
	}
	return out, rows.Err()
}

// insertedKeys returns the keys the statement inserted into m's table.
func insertedKeys(db *gorm.DB, m *model, head int64) ([]any, error) {
	return changedKeys(db, m, head, outbox.OpInsert)
}

// attachVectors puts vecs[i] on the capture trigger's event of keys[i]
// written by this statement, so that a write costs one event per row. The
// statement's events are those above head or, when head is -1 (a one-row
// INSERT without conflict clause), the newest event of the log. A key with
// no such event (an upsert that updated no watched column, a user trigger
// that wrote after ours) gets an OpVector event of its own.
func (p *Plugin) attachVectors(db *gorm.DB, st *state, head int64, keys []any, vecs [][]byte) {
	if len(keys) == 0 {
		return
	}
	ctx, m := db.Statement.Context, st.m
	fail := func(err error) {
		db.AddError(fmt.Errorf("gormplugin: record the vectors of %s (did you run gormplugin.Migrate?): %w", m.spec.Source, err))
	}
	var missing []int
	if head < 0 {
		res, err := p.exec(ctx, db, `UPDATE oi_events SET vec = ? WHERE id = (SELECT max(id) FROM oi_events) AND tbl = ? AND key = ? AND op = ?`,
			vecs[0], m.spec.Source, keys[0], int64(outbox.OpInsert))
		if err != nil {
			fail(err)
			return
		}
		if n, _ := res.RowsAffected(); n != 1 {
			missing = []int{0}
		}
	} else {
		ids, err := statementEvents(db, m, head)
		if err != nil {
			fail(err)
			return
		}
		// By rowid: the log has no key index, and a join on key would
		// scan the statement's events once per row.
		const per = 8000
		args := make([]any, 0, 2*min(per, len(keys)))
		flush := func() error {
			if len(args) == 0 {
				return nil
			}
			q := `UPDATE oi_events SET vec = v.column2 FROM (VALUES ` + strings.TrimSuffix(strings.Repeat("(?,?),", len(args)/2), ",") + `) AS v WHERE oi_events.id = v.column1`
			_, err := p.exec(ctx, db, q, args...)
			args = args[:0]
			return err
		}
		for i, k := range keys {
			id, ok := ids[k]
			if !ok {
				missing = append(missing, i)
				continue
			}
			if args = append(args, id, vecs[i]); len(args) == 2*per {
				if err := flush(); err != nil {
					fail(err)
					return
				}
			}
		}
		if err := flush(); err != nil {
			fail(err)
			return
		}
	}
	st.wrote = true
	if len(missing) == 0 {
		return
	}
	events := make([]outbox.Event, len(missing))
	for j, i := range missing {
		events[j] = outbox.Event{Table: m.spec.Source, Key: keys[i], Op: outbox.OpVector, Vec: vecs[i], At: st.at}
	}
	p.appendEvents(db, st, events)
}

// statementEvents returns the id of the newest event above head that the
// statement's triggers wrote for each key of m's table that it inserted or
// updated.
func statementEvents(db *gorm.DB, m *model, head int64) (map[any]int64, error) {
	q := `SELECT id, key FROM oi_events WHERE id > ? AND tbl = ? AND op IN (?, ?, ?, ?)`
	r, err := db.Statement.ConnPool.QueryContext(db.Statement.Context, q, head, m.spec.Source,
		int64(outbox.OpInsert), int64(outbox.OpUpdate), int64(outbox.OpSoftDelete), int64(outbox.OpRestore))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := map[any]int64{}
	for r.Next() {
		var id int64
		var k any
		if err := r.Scan(&id, &k); err != nil {
			return nil, err
		}
		nk, err := outbox.NormalizeKey(k)
		if err != nil {
			return nil, err
		}
		out[nk] = id
	}
	return out, r.Err()
}

// readColumns reads cols of the rows with the given keys, on the
// statement's connection, by key.
func readColumns(db *gorm.DB, m *model, cols []string, keys []any) (map[any][]any, error) {
	out := make(map[any][]any, len(keys))
	q := "SELECT " + outbox.Quote(m.spec.Key) + "," + quoteList(cols) + " FROM " + outbox.Quote(m.spec.Source) + " WHERE " + outbox.Quote(m.spec.Key) + " IN ("
	err := sqlutil.Chunked(keys, sqlutil.ChunkSize, func(chunk []any) error {
		rows, err := db.Statement.ConnPool.QueryContext(db.Statement.Context, q+outbox.Placeholders(len(chunk))+")", chunk...)
		if err != nil {
			return err
		}
		return scanKeyed(rows, len(cols), func(k any, vals []any) { out[k] = vals })
	})
	if err != nil {
		return nil, fmt.Errorf("gormplugin: read rows of %s: %w", m.spec.Source, err)
	}
	return out, nil
}

// scanKeyed reads rows of a key and ncols columns, []byte values as
// strings, calls fn with the normalized key and the columns of each, and
// closes rows.
func scanKeyed(rows *sql.Rows, ncols int, fn func(key any, vals []any)) error {
	defer rows.Close()
	for rows.Next() {
		vals := make([]any, ncols+1)
		dest := make([]any, len(vals))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		k, err := outbox.NormalizeKey(vals[0])
		if err != nil {
			return err
		}
		fn(k, vals[1:])
	}
	return rows.Err()
}

// quoteList quotes identifiers for SQL.
func quoteList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = outbox.Quote(c)
	}
	return strings.Join(q, ",")
}
