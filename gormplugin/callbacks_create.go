package gormplugin

import (
	"fmt"
	"reflect"
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

type conflictPlan struct {
	mode           int
	target         []string  // conflict target columns
	vecTouched     bool      // DoUpdates named the vector
	indexedTouched bool      // DoUpdates named an indexed column
	existing       []*preRow // per row: the row it conflicts with, read before the insert
	oldOffset      int       // index of the first before-image column in preRow.vals
}

// beforeCreate validates and collects vectors, keeps them out of the SQL and
// reads the rows an upsert will conflict with.
func (p *Plugin) beforeCreate(db *gorm.DB) {
	_, m, ok := p.capturing(db)
	switch {
	case m == nil:
	case ok:
		p.planCreate(db, ensureState(db, m))
	case m.vec != nil:
		if rows := createRows(db.Statement); rows.maps != nil {
			stripMapVectors(ensureState(db, m), rows)
		}
	}
}

func stripMapVectors(st *state, rows rowSet) []any {
	m := st.m
	if m.vec == nil || rows.maps == nil {
		return nil
	}
	vals := make([]any, len(rows.maps))
	for i, mp := range rows.maps {
		for _, k := range m.vecKeys(mp) {
			v := mp[k]
			vals[i] = v
			delete(mp, k)
			st.cleanup = append(st.cleanup, func() { mp[k] = v })
		}
	}
	return vals
}

func (p *Plugin) planCreate(db *gorm.DB, st *state) {
	stmt, m := db.Statement, st.m
	st.rows = createRows(stmt)
	n := st.rows.len()
	if m.vec != nil {
		mapVecs := stripMapVectors(st, st.rows)
		selected, _ := m.vecSelected(stmt)
		st.vecs = make([][]byte, n)
		for i := 0; i < n; i++ {
			var v any
			if selected {
				if st.rows.structs != nil {
					v = m.vec.ReflectValueOf(stmt.Context, st.rows.structs[i]).Interface()
				} else {
					v = mapVecs[i]
				}
			}
			b, err := m.encodeVec(v)
			if err != nil {
				db.AddError(fmt.Errorf("row %d: %w", i, err))
				return
			}
			st.vecs[i] = b
		}
	}
	if st.rows.maps != nil && !hasKeys(stmt, m, st.rows) && !(st.rows.mapSlice != nil || len(st.rows.maps) == 1) {
		db.AddError(fmt.Errorf("%w: %s: creating from []map without primary keys: pass a pointer to the slice, structs, or set %q in each map", ErrUnsupportedWrite, m.spec.Source, m.key.DBName))
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
	if cp.mode == conflictNone || db.DryRun || n == 0 {
		return
	}
	if len(cp.target) == 0 {
		cp.target = []string{m.key.DBName}
	}
	if err := p.readConflicts(db, st); err != nil {
		db.AddError(err)
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
// such column) and notes whether indexed columns are updated.
func stripUpsertVector(stmt *gorm.Statement, st *state, orig clause.Clause, oc clause.OnConflict) {
	m, cp := st.m, &st.conflict
	kept := make([]clause.Assignment, 0, len(oc.DoUpdates))
	for _, a := range oc.DoUpdates {
		if m.vecNames[a.Column.Name] {
			cp.vecTouched = true
			continue
		}
		if m.watched[a.Column.Name] {
			cp.indexedTouched = true
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

// readConflicts reads, before the insert, the existing rows that the
// statement's rows conflict with on the target columns: their keys and, for
// external-content FTS, their before-images.
func (p *Plugin) readConflicts(db *gorm.DB, st *state) error {
	stmt, m, cp := db.Statement, st.m, &st.conflict
	n := st.rows.len()
	cp.existing = make([]*preRow, n)
	onKey := len(cp.target) == 1 && cp.target[0] == m.key.DBName
	var tfields []*schema.Field
	for _, c := range cp.target {
		f := stmt.Schema.LookUpField(c)
		if f == nil || f.DBName == "" {
			return fmt.Errorf("%w: %s: ON CONFLICT column %q is not a column of the model", ErrUnsupportedWrite, m.spec.Source, c)
		}
		tfields = append(tfields, f)
	}
	// Tuples of the rows that may conflict.
	tuples := make([][]any, n)
	var idx []int
	for i := 0; i < n; i++ {
		t := make([]any, len(tfields))
		ok := true
		for j, f := range tfields {
			v := st.rows.value(stmt, i, f)
			if f == m.key {
				k, kok := normKey(v)
				if !kok {
					ok = false
					break
				}
				v = k
			} else if v == nil {
				ok = false
				break
			}
			t[j] = v
		}
		if ok {
			tuples[i] = t
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	var cols []string
	if !onKey {
		cols = append(cols, cp.target...)
	}
	cp.oldOffset = len(cols)
	cols = append(cols, m.oldCols()...)
	found := map[string]*preRow{}
	per := 30000 / len(tfields)
	for start := 0; start < len(idx); start += per {
		end := min(start+per, len(idx))
		var sb strings.Builder
		sb.WriteString("SELECT ")
		sb.WriteString(outbox.Quote(m.key.DBName))
		for _, c := range cols {
			sb.WriteByte(',')
			sb.WriteString(outbox.Quote(c))
		}
		sb.WriteString(" FROM ")
		sb.WriteString(outbox.Quote(m.spec.Source))
		sb.WriteString(" WHERE ")
		var vars []any
		if len(tfields) == 1 {
			sb.WriteString(outbox.Quote(cp.target[0]))
			sb.WriteString(" IN (")
			for k, i := range idx[start:end] {
				if k > 0 {
					sb.WriteByte(',')
				}
				sb.WriteByte('?')
				vars = append(vars, tuples[i][0])
			}
		} else {
			sb.WriteString("(" + quoteList(cp.target) + ") IN (VALUES ")
			for k, i := range idx[start:end] {
				if k > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString("(" + strings.TrimSuffix(strings.Repeat("?,", len(tfields)), ",") + ")")
				vars = append(vars, tuples[i]...)
			}
		}
		sb.WriteByte(')')
		rows, err := queryRows(db, m, sb.String(), vars, len(cols))
		if err != nil {
			return err
		}
		for i := range rows {
			r := &rows[i]
			var t []any
			if onKey {
				t = []any{r.key}
			} else {
				t = r.vals[:len(cp.target)]
			}
			found[tupleKey(t)] = r
		}
	}
	for _, i := range idx {
		cp.existing[i] = found[tupleKey(tuples[i])]
	}
	return nil
}

// tupleKey is a comparable form of conflict-target values, equal for a Go
// value and the same value scanned back from SQLite.
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

// afterCreate turns the inserted (or upserted) rows into events.
func (p *Plugin) afterCreate(db *gorm.DB) {
	st, _, ok := p.capturing(db)
	if !ok || st == nil || db.DryRun {
		return
	}
	stmt, m, cp := db.Statement, st.m, &st.conflict
	n := st.rows.len()
	events := make([]outbox.Event, 0, n)
	for i := 0; i < n; i++ {
		var ex *preRow
		if cp.existing != nil {
			ex = cp.existing[i]
		}
		var vec []byte
		if st.vecs != nil {
			vec = st.vecs[i]
		}
		if ex != nil {
			e := outbox.Event{Table: m.spec.Source, Key: ex.key, At: st.at}
			if m.external {
				e.Old = ex.vals[cp.oldOffset:]
			}
			switch cp.mode {
			case conflictDoNothing:
				continue
			case conflictUpdateAll:
				e.Op, e.Vec = outbox.OpUpsert, vec
			case conflictDoUpdates:
				switch {
				case cp.vecTouched:
					e.Op, e.Vec = outbox.OpUpsert, vec
				case cp.indexedTouched:
					e.Op = outbox.OpUpdate
				default:
					continue
				}
			}
			events = append(events, e)
			continue
		}
		key, ok := st.rows.key(stmt, m, i, n)
		if !ok {
			if cp.mode == conflictDoNothing && m.keyInt {
				continue // not inserted: gorm left the key unassigned
			}
			db.AddError(fmt.Errorf("%w: %s: cannot determine the primary key of inserted row %d", ErrUnsupportedWrite, m.spec.Source, i))
			return
		}
		events = append(events, outbox.Event{Table: m.spec.Source, Key: key, Op: outbox.OpInsert, Vec: vec, At: st.at})
	}
	p.appendEvents(db, st, events)
}
