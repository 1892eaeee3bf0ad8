package gormplugin

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
)

// ClearVector, as the vector's value in an update, removes the vector of
// every row the update matches:
//
//	db.Model(&a).Update("embedding", gormplugin.ClearVector)
//
// It is the only way to clear a vector: an empty vector in any write (Save,
// Updates, upserts, a struct loaded with Find) leaves the stored one alone,
// since vectors are not read back into models.
var ClearVector = clearVector{}

type clearVector struct{}

// vectorUpdate is what an update that sets vectors passes from beforeUpdate
// to afterUpdate.
type vectorUpdate struct {
	vecs [][]byte // per vector field: the encoded vector, empty for ClearVector, nil when not set
	head int64    // the log's last id before the statement
}

// beforeUpdate runs just before gorm:update. It keeps the vector out of the
// SET clause. The capture triggers record the rows whose watched columns the
// update changes; when the update also sets a vector, the key is added to
// the SET list (as key = key), so that the trigger reports every row the
// update matches, and afterUpdate gives exactly those rows the vector.
func (p *Plugin) beforeUpdate(db *gorm.DB) {
	_, m, ok := p.capturing(db)
	if m == nil || m.vec == nil {
		return
	}
	stmt := db.Statement

	// Vectors in an update map: keep them out of the SQL.
	var vecVals []any // per vector field, when vecInMap
	var inMap []bool
	vecInMap := false
	var src map[string]any
	switch d := stmt.Dest.(type) {
	case map[string]any:
		src = d
	case *map[string]any:
		if d != nil {
			src = *d
		}
	}
	if ks := m.vecKeys(src); len(ks) > 0 {
		cp := maps.Clone(src)
		vecVals, inMap = make([]any, len(m.vecs)), make([]bool, len(m.vecs))
		for _, k := range ks {
			if j := m.vecIndex(k); j >= 0 {
				vecVals[j], inMap[j] = src[k], true
			}
			delete(cp, k)
		}
		orig := stmt.Dest
		stmt.Dest = cp
		st := ensureState(db, m)
		st.cleanup = append(st.cleanup, func() { stmt.Dest = orig })
		vecInMap = true
	}
	if !ok || stmt.SQL.Len() > 0 {
		return
	}

	// Which vectors are written? Only non-empty vectors and ClearVector.
	var uv reflect.Value
	if !vecInMap {
		uv = reflect.ValueOf(stmt.Dest)
		for uv.Kind() == reflect.Pointer && !uv.IsNil() {
			uv = uv.Elem()
		}
		if uv.Kind() != reflect.Struct || uv.Type() != m.schema.ModelType {
			return
		}
	}
	vecs := make([][]byte, len(m.vecs))
	some := false
	for j := range m.vecs {
		if selected, _ := m.vecSelected(stmt, j); !selected {
			continue
		}
		vf := &m.vecs[j]
		var vecVal any
		switch {
		case vecInMap && !inMap[j]:
			continue
		case vecInMap:
			vecVal = vecVals[j]
		default:
			vecVal = vf.f.ReflectValueOf(stmt.Context, uv).Interface()
		}
		if _, clear := vecVal.(clearVector); clear {
			if vf.spec.Derived() {
				db.AddError(fmt.Errorf("gormplugin: %s.%s: ClearVector: %w (from=%s)", m.spec.Source, vf.f.Name, ErrDerivedVector, strings.Join(vf.spec.From, ",")))
				return
			}
			vecs[j], some = []byte{}, true
			continue
		}
		b, err := m.encodeVecOf(j, vecVal)
		if err != nil {
			db.AddError(err)
			return
		}
		if len(b) == 0 {
			continue // empty: leave the stored vector alone
		}
		vecs[j], some = b, true
		if vecInMap && stmt.ReflectValue.Kind() == reflect.Struct && stmt.ReflectValue.CanAddr() {
			if f, err := vectorOf(vecVal); err == nil {
				_ = vf.f.Set(stmt.Context, stmt.ReflectValue, reflect.ValueOf(f).Convert(vf.f.FieldType).Interface())
			}
		}
	}
	if !some {
		return
	}

	// Build the statement the way gorm:update does, with the key in SET.
	for _, c := range stmt.Schema.UpdateClauses {
		stmt.AddClause(c)
	}
	stmt.AddClauseIfNotExists(clause.Update{})
	if _, ok := stmt.Clauses["SET"]; !ok {
		set := callbacks.ConvertToAssignments(stmt)
		if db.Error != nil {
			return
		}
		stmt.AddClause(set)
		// gorm:update removes the SET it derives once the statement is
		// built; the SQL is built below, so the clause goes when this
		// callback returns.
		defer delete(stmt.Clauses, "SET")
	}
	set, _ := stmt.Clauses["SET"].Expression.(clause.Set)
	hasKey := false
	for _, a := range set {
		if a.Column.Name == m.key.DBName {
			hasKey = true
		}
	}
	if !hasKey {
		set = append(set, clause.Assignment{Column: clause.Column{Name: m.key.DBName}, Value: clause.Column{Name: m.key.DBName}})
		c := stmt.Clauses["SET"]
		c.Expression = set
		stmt.Clauses["SET"] = c
	}
	stmt.Build(stmt.BuildClauses...)
	if db.DryRun || db.Error != nil {
		return
	}
	head, err := logHead(db)
	if err != nil {
		db.AddError(err)
		return
	}
	ensureState(db, m).update = &vectorUpdate{vecs: vecs, head: head}
}

// afterUpdate puts the vector on the events the trigger recorded for the
// rows the update matched.
func (p *Plugin) afterUpdate(db *gorm.DB) {
	st := getState(db)
	if st == nil || db.Error != nil || st.update == nil || db.DryRun {
		return
	}
	// Every row the update matched has a trigger event above head (the key
	// is in SET); a changed key's delete event is not one of them.
	m, u := st.m, st.update
	if first := u.vecs[0]; first != nil {
		var vec any = first
		if len(first) == 0 {
			vec = outbox.NoVector // TEXT '': the driver cannot read a zero-length BLOB back
		}
		_, err := p.exec(db.Statement.Context, db, `UPDATE oi_events SET vec = ? WHERE id > ? AND tbl = ? AND op IN (?, ?, ?, ?)`,
			vec, u.head, m.spec.Source, int64(outbox.OpUpdate), int64(outbox.OpSoftDelete), int64(outbox.OpRestore), int64(outbox.OpInsert))
		if err != nil {
			db.AddError(fmt.Errorf("gormplugin: record the vectors of %s: %w", m.spec.Source, err))
			return
		}
		st.wrote = true
	}
	// The other vector fields follow as vector events of the same rows.
	if !slices.ContainsFunc(u.vecs[1:], func(b []byte) bool { return b != nil }) {
		return
	}
	keys, err := changedKeys(db, m, u.head, outbox.OpUpdate, outbox.OpSoftDelete, outbox.OpRestore, outbox.OpInsert)
	if err != nil {
		db.AddError(err)
		return
	}
	var events []outbox.Event
	for j := 1; j < len(u.vecs); j++ {
		if u.vecs[j] == nil {
			continue
		}
		for _, k := range keys {
			events = append(events, outbox.Event{Table: m.spec.Source, Key: k, Op: outbox.OpVector, Vec: u.vecs[j], Field: m.vecs[j].event, At: st.at})
		}
	}
	p.appendEvents(db, st, events)
}
