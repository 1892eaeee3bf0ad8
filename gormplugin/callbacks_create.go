package gormplugin

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// rowSet is the rows of a create statement: structs or maps.
type rowSet struct {
	structs  []reflect.Value
	maps     []map[string]any
	mapSlice *[]map[string]any // gorm appends RETURNING rows to *[]map dests
}

func (r *rowSet) len() int { return len(r.structs) + len(r.maps) }

func createRows(stmt *gorm.Statement) rowSet {
	switch d := stmt.Dest.(type) {
	case map[string]any:
		return rowSet{maps: []map[string]any{d}}
	case *map[string]any:
		if d != nil && *d != nil {
			return rowSet{maps: []map[string]any{*d}}
		}
		return rowSet{}
	case []map[string]any:
		return rowSet{maps: d}
	case *[]map[string]any:
		if d == nil {
			return rowSet{}
		}
		return rowSet{maps: *d, mapSlice: d}
	}
	rv := stmt.ReflectValue
	switch rv.Kind() {
	case reflect.Struct:
		return rowSet{structs: []reflect.Value{rv}}
	case reflect.Slice, reflect.Array:
		out := make([]reflect.Value, 0, rv.Len())
		for i := 0; i < rv.Len(); i++ {
			e := reflect.Indirect(rv.Index(i))
			if e.Kind() == reflect.Struct {
				out = append(out, e)
			}
		}
		return rowSet{structs: out}
	}
	return rowSet{}
}

// value returns row i's value of field f.
func (r *rowSet) value(stmt *gorm.Statement, i int, f *schema.Field) any {
	if r.structs != nil {
		v, _ := f.ValueOf(stmt.Context, r.structs[i])
		return v
	}
	mp := r.maps[i]
	if v, ok := mp[f.DBName]; ok && f.DBName != "" {
		return v
	}
	return mp[f.Name]
}

// key returns row i's primary key after the insert.
func (r *rowSet) key(stmt *gorm.Statement, m *model, i int, n int) (any, bool) {
	k, ok := normKey(r.value(stmt, i, m.key))
	if ok || r.structs != nil {
		return k, ok
	}
	if r.mapSlice != nil && len(*r.mapSlice) == 2*n { // gorm appended the RETURNING rows
		mp := (*r.mapSlice)[n+i]
		if v, found := mp[m.key.DBName]; found {
			return normKey(v)
		}
	}
	return k, ok
}

// Conflict modes of a create statement.
const (
	conflictNone = iota
	conflictDoNothing
	conflictUpdateAll
	conflictDoUpdates
)

// conflictPlan is what a create statement with a conflict clause needs to
// find out, after the insert, which of its rows the database inserted.
type conflictPlan struct {
	mode       int
	target     []string // ON CONFLICT columns, if named
	vecTouched bool     // DoUpdates named a vector
	touched    []bool   // per vector field: DoUpdates named it
	head       int64    // the log's last id before the statement; -1: not read (no conflict clause)
	preKeys    []any    // per row: the key it carried before the insert (nil: assigned by the database)
}

// beforeCreate validates and collects vectors and keeps them out of the
// SQL. The capture triggers record the inserted rows; the plugin adds the
// vectors afterwards (afterCreate).
func (p *Plugin) beforeCreate(db *gorm.DB) {
	_, m, ok := p.capturing(db)
	switch {
	case m == nil:
	case ok:
		if m.vec != nil {
			p.planCreate(db, ensureState(db, m))
		}
	case m.vec != nil:
		if rows := createRows(db.Statement); rows.maps != nil {
			stripMapVectors(ensureState(db, m), rows)
		}
	}
}

// stripMapVectors removes the vectors from map rows (restored by the
// cleanup) and returns them: vals[i][j] is row i's value of vector field j.
func stripMapVectors(st *state, rows rowSet) [][]any {
	m := st.m
	if m.vec == nil || rows.maps == nil {
		return nil
	}
	vals := make([][]any, len(rows.maps))
	for i, mp := range rows.maps {
		for _, k := range m.vecKeys(mp) {
			v := mp[k]
			if j := m.vecIndex(k); j >= 0 {
				if vals[i] == nil {
					vals[i] = make([]any, len(m.vecs))
				}
				vals[i][j] = v
			}
			delete(mp, k)
			st.cleanup = append(st.cleanup, func() { mp[k] = v })
		}
	}
	return vals
}

// planCreate encodes the rows' vectors (an empty vector leaves the row
// without one) and, for statements with a conflict clause, notes what
// afterCreate needs to tell inserted rows from skipped or updated ones.
func (p *Plugin) planCreate(db *gorm.DB, st *state) {
	stmt, m := db.Statement, st.m
	st.rows = createRows(stmt)
	n := st.rows.len()
	mapVecs := stripMapVectors(st, st.rows)
	st.vecs = make([][]byte, n)
	if len(m.vecs) > 1 {
		st.more = make([][][]byte, len(m.vecs)-1)
	}
	some := false
	for j := range m.vecs {
		selected, _ := m.vecSelected(stmt, j)
		col := st.vecs
		if j > 0 {
			col = make([][]byte, n)
			st.more[j-1] = col
		}
		for i := 0; i < n; i++ {
			var v any
			if selected {
				if st.rows.structs != nil {
					v = m.vecs[j].f.ReflectValueOf(stmt.Context, st.rows.structs[i]).Interface()
				} else if mapVecs[i] != nil {
					v = mapVecs[i][j]
				}
			}
			b, err := m.encodeVecOf(j, v)
			if err != nil {
				db.AddError(fmt.Errorf("row %d: %w", i, err))
				return
			}
			if len(b) > 0 {
				col[i] = b
				some = true
			}
		}
	}
	if st.rows.maps != nil && some && !hasKeys(stmt, m, st.rows) && !(st.rows.mapSlice != nil || len(st.rows.maps) == 1) {
		db.AddError(fmt.Errorf("%w: %s: creating from []map with vectors and without primary keys: pass a pointer to the slice, structs, or set %q in each map", ErrUnsupportedWrite, m.spec.Source, m.key.DBName))
		return
	}

	// Upserts.
	cp := &st.conflict
	if c, ok := stmt.Clauses["ON CONFLICT"]; ok {
		if oc, ok := c.Expression.(clause.OnConflict); ok {
			switch {
			case oc.UpdateAll:
				cp.mode = conflictUpdateAll
			case len(oc.DoUpdates) > 0:
				cp.mode = conflictDoUpdates
			default:
				cp.mode = conflictDoNothing
			}
			for _, col := range oc.Columns {
				cp.target = append(cp.target, col.Name)
			}
			if cp.mode == conflictDoUpdates {
				stripUpsertVector(stmt, st, c, oc)
			}
		}
	}
	if c, ok := stmt.Clauses["INSERT"]; ok && cp.mode == conflictNone {
		if ins, ok := c.Expression.(clause.Insert); ok {
			switch strings.ToUpper(strings.TrimSpace(ins.Modifier)) {
			case "OR IGNORE":
				cp.mode = conflictDoNothing
			case "OR REPLACE":
				cp.mode = conflictUpdateAll
			}
		}
	}
	if !some {
		st.vecs, st.more = nil, nil // the DO UPDATE clause is still stripped of the vector
		return
	}
	if db.DryRun {
		return
	}
	cp.head = -1 // no conflict clause: one row, whose event is the newest (see attachVectors), or a batch (replaceInsertEvents)
	if cp.mode != conflictNone {
		h, err := logHead(db)
		if err != nil {
			db.AddError(fmt.Errorf("gormplugin: %s: %w", m.spec.Source, err))
			return
		}
		cp.head = h
	}
	if cp.mode == conflictDoNothing || (cp.mode == conflictDoUpdates && !cp.vecTouched) {
		cp.preKeys = make([]any, n)
		for i := 0; i < n; i++ {
			if k, ok := normKey(st.rows.value(stmt, i, m.key)); ok {
				cp.preKeys[i] = k
			}
		}
	}
}

// hasKeys reports whether every map row carries its primary key.
func hasKeys(stmt *gorm.Statement, m *model, rows rowSet) bool {
	for i := range rows.maps {
		if _, ok := normKey(rows.value(stmt, i, m.key)); !ok {
			return false
		}
	}
	return true
}

// stripUpsertVector removes the vector from DoUpdates (the source has no
// such column) and notes that the upsert sets it.
func stripUpsertVector(stmt *gorm.Statement, st *state, orig clause.Clause, oc clause.OnConflict) {
	m, cp := st.m, &st.conflict
	kept := make([]clause.Assignment, 0, len(oc.DoUpdates))
	for _, a := range oc.DoUpdates {
		if m.vecNames[a.Column.Name] {
			cp.vecTouched = true
			if j := m.vecIndex(a.Column.Name); j >= 0 {
				if cp.touched == nil {
					cp.touched = make([]bool, len(m.vecs))
				}
				cp.touched[j] = true
			}
			continue
		}
		kept = append(kept, a)
	}
	if len(kept) == len(oc.DoUpdates) {
		return
	}
	if len(kept) == 0 { // only the vector: keep a valid DO UPDATE that changes nothing
		kept = append(kept, clause.Assignment{Column: clause.Column{Name: m.key.DBName}, Value: clause.Column{Name: m.key.DBName}})
	}
	noc := oc
	noc.DoUpdates = kept
	c := orig
	c.Expression = noc
	clauses := stmt.Clauses
	clauses["ON CONFLICT"] = c
	st.cleanup = append(st.cleanup, func() { clauses["ON CONFLICT"] = orig })
}

// afterCreate puts the vectors of the rows the statement wrote on the events
// the capture triggers recorded for them (see attachVectors).
func (p *Plugin) afterCreate(db *gorm.DB) {
	st, _, ok := p.capturing(db)
	if !ok || st == nil || st.vecs == nil || db.DryRun {
		return
	}
	stmt, m, cp := db.Statement, st.m, &st.conflict
	n := st.rows.len()
	// keys[i]: the key row i was written under; nil when it was not written
	// (or, for DoUpdates without the vector, not inserted).
	keys := make([]any, n)
	switch {
	case cp.preKeys != nil && cp.mode == conflictDoUpdates:
		// Every row was inserted or updated, and gorm's RETURNING keys are
		// in order; an updated row keeps its vector.
		inserted, err := insertedKeys(db, m, cp.head)
		if err != nil {
			db.AddError(err)
			return
		}
		set := make(map[any]bool, len(inserted))
		for _, k := range inserted {
			set[k] = true
		}
		for i := 0; i < n; i++ {
			if k, ok := st.rows.key(stmt, m, i, n); ok && set[k] {
				keys[i] = k
			}
		}
	case cp.preKeys != nil:
		inserted, err := insertedKeys(db, m, cp.head)
		if err != nil {
			db.AddError(err)
			return
		}
		if err := p.matchInserted(db, st, inserted, keys); err != nil {
			db.AddError(err)
			return
		}
	case cp.mode != conflictNone && len(cp.target) > 0 && !(len(cp.target) == 1 && cp.target[0] == m.key.DBName):
		// An upsert on another unique column writes each row under the key
		// of the row holding its target values, which may not be the key
		// the row carried: look it up now that the statement ran.
		found, err := keysByTarget(db, st, cp.target)
		if err != nil {
			db.AddError(err)
			return
		}
		copy(keys, found)
	default:
		plain := cp.mode == conflictNone && n > 1
		for i := 0; i < n; i++ {
			if !st.hasVec(i) && !plain {
				continue
			}
			k, ok := st.rows.key(stmt, m, i, n)
			if !ok {
				db.AddError(fmt.Errorf("%w: %s: cannot determine the primary key of inserted row %d", ErrUnsupportedWrite, m.spec.Source, i))
				return
			}
			keys[i] = k
		}
		if plain {
			if slices.ContainsFunc(st.vecs, func(b []byte) bool { return b != nil }) {
				p.replaceInsertEvents(db, st, keys)
			}
			p.appendMoreVectors(db, st, keys, nil)
			return
		}
	}
	// An upsert whose DO UPDATE names some vector fields gives the others
	// to inserted rows only (an updated row keeps its vectors).
	var inserted map[any]bool
	if cp.mode == conflictDoUpdates && cp.vecTouched && slices.Contains(cp.touched[:len(m.vecs)], false) {
		ks, err := insertedKeys(db, m, cp.head)
		if err != nil {
			db.AddError(err)
			return
		}
		inserted = make(map[any]bool, len(ks))
		for _, k := range ks {
			inserted[k] = true
		}
	}
	keep := func(j int, k any) bool {
		return k != nil && (inserted == nil || cp.touched[j] || inserted[k])
	}
	var wk []any
	var wv [][]byte
	for i, k := range keys {
		if keep(0, k) && st.vecs[i] != nil {
			wk, wv = append(wk, k), append(wv, st.vecs[i])
		}
	}
	p.attachVectors(db, st, cp.head, wk, wv)
	p.appendMoreVectors(db, st, keys, keep)
}

// appendMoreVectors appends the vectors of the model's vector fields other
// than the first as OpVector events naming their field, after the
// statement's events: keys[i] is the key row i was written under (nil: not
// written); keep, if not nil, filters (field, key) pairs.
func (p *Plugin) appendMoreVectors(db *gorm.DB, st *state, keys []any, keep func(j int, k any) bool) {
	if db.Error != nil || len(st.more) == 0 {
		return
	}
	m := st.m
	var events []outbox.Event
	for j, col := range st.more {
		for i, k := range keys {
			if k == nil || col[i] == nil || (keep != nil && !keep(j+1, k)) {
				continue
			}
			events = append(events, outbox.Event{Table: m.spec.Source, Key: k, Op: outbox.OpVector, Vec: col[i], Field: m.vecs[j+1].event, At: st.at})
		}
	}
	p.appendEvents(db, st, events)
}

// replaceInsertEvents rewrites the insert events the triggers wrote for a
// multi-row INSERT without conflict clause (every row inserted, keys as gorm
// assigned them) as events that carry the rows' vectors: it deletes the
// statement's insert events, which are among the newest n of the log, and
// appends one per row with one multi-row INSERT. Growing n small events in
// place would rebalance most of the log's last pages.
func (p *Plugin) replaceInsertEvents(db *gorm.DB, st *state, keys []any) {
	ctx, m := db.Statement.Context, st.m
	// All or nothing: only when all n events are in the window.
	res, err := p.exec(ctx, db, `DELETE FROM oi_events WHERE id > (SELECT max(id) FROM oi_events) - ?1 AND tbl = ?2 AND op = ?3
		AND (SELECT count(*) FROM oi_events WHERE id > (SELECT max(id) FROM oi_events) - ?1 AND tbl = ?2 AND op = ?3) = ?1`,
		int64(len(keys)), m.spec.Source, int64(outbox.OpInsert))
	if err != nil {
		db.AddError(fmt.Errorf("gormplugin: record the vectors of %s: %w", m.spec.Source, err))
		return
	}
	if n, _ := res.RowsAffected(); n != int64(len(keys)) {
		// Events of other tables interleaved (a user trigger): the
		// triggers' events stay, and the vectors follow as events of their
		// own.
		var events []outbox.Event
		for i, k := range keys {
			if st.vecs[i] != nil {
				events = append(events, outbox.Event{Table: m.spec.Source, Key: k, Op: outbox.OpVector, Vec: st.vecs[i], At: st.at})
			}
		}
		p.appendEvents(db, st, events)
		return
	}
	events := make([]outbox.Event, len(keys))
	for i, k := range keys {
		vec := st.vecs[i]
		if vec == nil {
			vec = []byte{}
		}
		events[i] = outbox.Event{Table: m.spec.Source, Key: k, Op: outbox.OpInsert, Vec: vec, At: st.at}
	}
	p.appendEvents(db, st, events)
}

// matchInserted finds, for a create whose rows may have been skipped (DO
// NOTHING, OR IGNORE), which rows the database inserted: inserted holds the keys of the triggers' insert
// events, ascending. Rows that carried a key match it. Rows whose key the
// database assigned are inserted in statement order, so the remaining keys
// go to them in order, each to the next row whose conflict-target values
// equal the inserted row's. gorm hands RETURNING ids to the structs in
// order, which shifts them when a row was skipped: the structs get their
// real keys back here (zero for skipped rows).
func (p *Plugin) matchInserted(db *gorm.DB, st *state, inserted []any, keys []any) error {
	stmt, m, cp := db.Statement, st.m, &st.conflict
	set := make(map[any]bool, len(inserted))
	for _, k := range inserted {
		set[k] = true
	}
	var auto []int
	for i, k := range cp.preKeys {
		switch {
		case k == nil:
			auto = append(auto, i)
		case set[k]:
			keys[i] = k
			delete(set, k)
		}
	}
	if len(auto) == 0 {
		return nil
	}
	var rest []any
	for _, k := range inserted {
		if set[k] {
			rest = append(rest, k)
		}
	}
	target, err := conflictColumns(db, m, cp.target)
	if err != nil {
		return err
	}
	var tfields []*schema.Field
	for _, c := range target {
		if f := stmt.Schema.LookUpField(c); f != nil && f.DBName != "" {
			tfields = append(tfields, f)
		}
	}
	var read map[any][]any
	if len(tfields) > 0 && len(rest) > 0 {
		cols := make([]string, len(tfields))
		for i, f := range tfields {
			cols[i] = f.DBName
		}
		if read, err = readColumns(db, m, cols, rest); err != nil {
			return err
		}
	}
	j := 0
	for _, k := range rest {
		for j < len(auto) {
			i := auto[j]
			j++
			if read != nil {
				want := make([]any, len(tfields))
				for x, f := range tfields {
					want[x] = st.rows.value(stmt, i, f)
				}
				if tupleKey(want) != tupleKey(read[k]) {
					continue
				}
			}
			keys[i] = k
			break
		}
	}
	if st.rows.structs != nil {
		for _, i := range auto {
			v := any(reflect.Zero(m.key.FieldType).Interface())
			if keys[i] != nil {
				v = keys[i]
			}
			if err := m.key.Set(stmt.Context, st.rows.structs[i], v); err != nil {
				return fmt.Errorf("gormplugin: %s: set the key of row %d: %w", m.spec.Source, i, err)
			}
		}
	}
	return nil
}

// keysByTarget returns, per row of the statement with a vector, the key of
// the source row that holds the row's values of the target columns.
func keysByTarget(db *gorm.DB, st *state, target []string) ([]any, error) {
	stmt, m := db.Statement, st.m
	var tfields []*schema.Field
	for _, c := range target {
		f := stmt.Schema.LookUpField(c)
		if f == nil || f.DBName == "" {
			return nil, fmt.Errorf("%w: %s: ON CONFLICT column %q is not a column of the model", ErrUnsupportedWrite, m.spec.Source, c)
		}
		tfields = append(tfields, f)
	}
	n := st.rows.len()
	keys := make([]any, n)
	tuple := func(i int) []any {
		t := make([]any, len(tfields))
		for j, f := range tfields {
			t[j] = st.rows.value(stmt, i, f)
		}
		return t
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(tfields)), ",") + ")"
	cols := make([]string, len(tfields))
	for j, f := range tfields {
		cols[j] = f.DBName
	}
	found := map[string]any{}
	var idx []int
	for i := 0; i < n; i++ {
		if st.hasVec(i) {
			idx = append(idx, i)
		}
	}
	per := 30000 / len(tfields)
	for start := 0; start < len(idx); start += per {
		end := min(start+per, len(idx))
		var sb strings.Builder
		sb.WriteString("SELECT " + outbox.Quote(m.spec.Key) + "," + quoteList(cols) + " FROM " + outbox.Quote(m.spec.Source) + " WHERE (" + quoteList(cols) + ") IN (VALUES ")
		var vars []any
		for k, i := range idx[start:end] {
			if k > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(row)
			vars = append(vars, tuple(i)...)
		}
		sb.WriteByte(')')
		rows, err := stmt.ConnPool.QueryContext(stmt.Context, sb.String(), vars...)
		if err != nil {
			return nil, fmt.Errorf("gormplugin: rows written to %s: %w", m.spec.Source, err)
		}
		if err := scanKeyed(rows, len(cols), func(k any, vals []any) { found[tupleKey(vals)] = k }); err != nil {
			return nil, fmt.Errorf("gormplugin: rows written to %s: %w", m.spec.Source, err)
		}
	}
	for _, i := range idx {
		keys[i] = found[tupleKey(tuple(i))]
	}
	return keys, nil
}

// conflictColumns returns the columns a DO NOTHING or DO UPDATE can conflict
// on when the key was assigned by the database: the named target, else the
// columns of the table's unique indexes (as SQLite has them).
func conflictColumns(db *gorm.DB, m *model, target []string) ([]string, error) {
	if len(target) > 0 {
		return target, nil
	}
	ctx := db.Statement.Context
	conn := db.Statement.ConnPool
	rows, err := conn.QueryContext(ctx, `SELECT ii.name FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii WHERE il."unique" AND il.origin != 'pk' ORDER BY il.name, ii.seqno`, m.spec.Source)
	if err != nil {
		return nil, fmt.Errorf("gormplugin: unique indexes of %s: %w", m.spec.Source, err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("gormplugin: unique indexes of %s: %w", m.spec.Source, err)
		}
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	return cols, rows.Err()
}

// tupleKey is a comparable form of column values, equal for a Go value and
// the same value scanned back from SQLite.
func tupleKey(t []any) string {
	var sb strings.Builder
	for _, v := range t {
		if k, _ := normKey(v); k != nil {
			v = k
		}
		fmt.Fprintf(&sb, "%T:%v\x00", v, v)
	}
	return sb.String()
}
