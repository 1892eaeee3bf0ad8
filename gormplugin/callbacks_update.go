package gormplugin

import (
	"database/sql/driver"
	"fmt"
	"maps"
	"reflect"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
)

// beforeUpdate runs just before gorm:update. It keeps the vector out of the
// SET clause, builds the statement exactly as gorm:update would (gorm then
// executes the prebuilt SQL), and, when the update touches an indexed column
// or the vector, reads the affected keys (and before-images) with the
// statement's own WHERE, in the statement's transaction, before the write.
func (p *Plugin) beforeUpdate(db *gorm.DB) {
	_, m, ok := p.capturing(db)
	if m == nil {
		return
	}
	stmt := db.Statement

	// A vector in an update map: keep it out of the SQL.
	var vecVal any
	vecInMap := false
	if m.vec != nil {
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
	}
	if !ok || stmt.SQL.Len() > 0 {
		return
	}
	if _, hasFrom := stmt.Clauses["FROM"]; hasFrom {
		db.AddError(fmt.Errorf("%w: %s: UPDATE … FROM", ErrUnsupportedWrite, m.spec.Source))
		return
	}

	// Is the vector written?
	var vec []byte
	vecTouched := false
	if m.vec != nil {
		selected, explicit := m.vecSelected(stmt)
		if vecInMap {
			vecTouched = selected
		} else {
			uv := reflect.ValueOf(stmt.Dest)
			for uv.Kind() == reflect.Pointer && !uv.IsNil() {
				uv = uv.Elem()
			}
			if uv.Kind() == reflect.Struct && uv.Type() == m.schema.ModelType {
				fv := m.vec.ReflectValueOf(stmt.Context, uv)
				vecTouched = selected && (explicit || fv.Len() > 0)
				vecVal = fv.Interface()
			}
		}
		if vecTouched {
			b, err := m.encodeVec(vecVal)
			if err != nil {
				db.AddError(err)
				return
			}
			vec = b
			if vecInMap && stmt.ReflectValue.Kind() == reflect.Struct && stmt.ReflectValue.CanAddr() {
				if f, err := vectorOf(vecVal); err == nil {
					_ = m.vec.Set(stmt.Context, stmt.ReflectValue, reflect.ValueOf(f).Convert(m.vec.FieldType).Interface())
				}
			}
		}
	}

	// Build the statement the way gorm:update does.
	for _, c := range stmt.Schema.UpdateClauses {
		stmt.AddClause(c)
	}
	stmt.AddClauseIfNotExists(clause.Update{})
	if _, ok := stmt.Clauses["SET"]; !ok {
		set := callbacks.ConvertToAssignments(stmt)
		if db.Error != nil {
			return
		}
		if len(set) == 0 {
			if !vecTouched {
				return // gorm:update does nothing either
			}
			// Only the vector changes: a SET that keeps the row as it is,
			// so that the statement still matches rows and reports them.
			set = clause.Set{{Column: clause.Column{Name: m.key.DBName}, Value: clause.Column{Name: m.key.DBName}}}
		}
		stmt.AddClause(set)
		// gorm:update removes the SET it derives once the statement is
		// built; the SQL is built below, so the clause goes when this
		// callback returns.
		defer delete(stmt.Clauses, "SET")
	}
	set, _ := stmt.Clauses["SET"].Expression.(clause.Set)
	touched := vecTouched
	var softA, keyA *clause.Assignment
	for i := range set {
		name := set[i].Column.Name
		if m.vecNames[name] && m.schema.LookUpField(name) == nil {
			db.AddError(fmt.Errorf("%w: %s: SET of the vector column %q", ErrUnsupportedWrite, m.spec.Source, name))
			return
		}
		if !m.watched[name] {
			continue
		}
		switch {
		case name == m.key.DBName:
			if _, isCol := set[i].Value.(clause.Column); !isCol {
				keyA = &set[i]
			}
		case m.soft != nil && name == m.soft.DBName:
			softA = &set[i]
			touched = true
		default:
			touched = true
		}
	}
	stmt.Build(stmt.BuildClauses...)
	if (!touched && keyA == nil) || db.DryRun || missingWhere(db) {
		return
	}

	oldCols := m.oldCols()
	cols := oldCols
	if softA != nil {
		cols = append(append([]string(nil), oldCols...), m.soft.DBName)
	}
	rows, err := selectRows(db, m, cols, whereOf(stmt))
	if err != nil {
		db.AddError(err)
		return
	}
	if keyA != nil {
		nk, ok := normKey(keyA.Value)
		for _, r := range rows {
			if !ok || nk != r.key {
				db.AddError(fmt.Errorf("%w: %s: key %v would become %v", ErrKeyChange, m.spec.Source, r.key, keyA.Value))
				return
			}
		}
		if !touched {
			return
		}
	}
	var newNull, known bool
	if softA != nil {
		newNull, known = isNull(softA.Value)
	}
	if len(rows) == 0 {
		return
	}
	st := ensureState(db, m)
	events := make([]outbox.Event, 0, len(rows))
	for _, r := range rows {
		e := outbox.Event{Table: m.spec.Source, Key: r.key, Op: outbox.OpUpdate, Vec: vec, At: st.at}
		if m.external {
			e.Old = r.vals[:len(oldCols)]
		}
		if softA != nil && known {
			wasNull := r.vals[len(oldCols)] == nil
			switch {
			case newNull && !wasNull:
				e.Op = outbox.OpRestore
			case !newNull && wasNull:
				e.Op = outbox.OpSoftDelete
			}
		}
		events = append(events, e)
	}
	st.pending = func(*gorm.DB) []outbox.Event { return events }
}

// isNull reports whether an assigned value is SQL NULL; known is false for
// SQL expressions.
func isNull(v any) (null, known bool) {
	switch v.(type) {
	case clause.Expr, clause.NamedExpr, clause.Column, clause.Expression:
		return false, false
	}
	if v == nil {
		return true, true
	}
	if val, ok := v.(driver.Valuer); ok {
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer && rv.IsNil() {
			return true, true
		}
		dv, err := val.Value()
		return err == nil && dv == nil, err == nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		return rv.IsNil(), true
	}
	return false, true
}
