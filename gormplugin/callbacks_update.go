package gormplugin

import (
	"fmt"
	"maps"
	"reflect"

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
	vec  []byte // encoded vector, or empty for ClearVector
	head int64  // the log's last id before the statement
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

	// A vector in an update map: keep it out of the SQL.
	var vecVal any
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
		for _, k := range ks {
			vecVal = src[k]
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

	// Is the vector written? Only a non-empty vector or ClearVector.
	selected, _ := m.vecSelected(stmt)
	if !selected {
		return
	}
	if !vecInMap {
		uv := reflect.ValueOf(stmt.Dest)
		for uv.Kind() == reflect.Pointer && !uv.IsNil() {
			uv = uv.Elem()
		}
		if uv.Kind() != reflect.Struct || uv.Type() != m.schema.ModelType {
			return
		}
		vecVal = m.vec.ReflectValueOf(stmt.Context, uv).Interface()
	}
	var vec []byte
	if _, clear := vecVal.(clearVector); clear {
		vec = []byte{}
	} else {
		b, err := m.encodeVec(vecVal)
		if err != nil {
			db.AddError(err)
			return
		}
		if len(b) == 0 {
			return // empty: leave the stored vector alone
		}
		vec = b
		if vecInMap && stmt.ReflectValue.Kind() == reflect.Struct && stmt.ReflectValue.CanAddr() {
			if f, err := vectorOf(vecVal); err == nil {
				_ = m.vec.Set(stmt.Context, stmt.ReflectValue, reflect.ValueOf(f).Convert(m.vec.FieldType).Interface())
			}
		}
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
	ensureState(db, m).update = &vectorUpdate{vec: vec, head: head}
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
	var vec any = st.update.vec
	if len(st.update.vec) == 0 {
		vec = outbox.NoVector // TEXT '': the driver cannot read a zero-length BLOB back
	}
	_, err := p.exec(db.Statement.Context, db, `UPDATE oi_events SET vec = ? WHERE id > ? AND tbl = ? AND op IN (?, ?, ?, ?)`,
		vec, st.update.head, st.m.spec.Source, int64(outbox.OpUpdate), int64(outbox.OpSoftDelete), int64(outbox.OpRestore), int64(outbox.OpInsert))
	if err != nil {
		db.AddError(fmt.Errorf("gormplugin: record the vectors of %s: %w", st.m.spec.Source, err))
		return
	}
	st.wrote = true
}
