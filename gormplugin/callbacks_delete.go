package gormplugin

import (
	"reflect"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// beforeDelete runs just before gorm:delete. It builds the statement as
// gorm:delete would (for gorm.DeletedAt models that is the soft-delete
// UPDATE), then reads the affected keys and before-images with the final
// WHERE, in the statement's transaction, before the write.
func (p *Plugin) beforeDelete(db *gorm.DB) {
	_, m, ok := p.capturing(db)
	if !ok || db.Statement.SQL.Len() > 0 {
		return
	}
	stmt := db.Statement
	for _, c := range stmt.Schema.DeleteClauses {
		stmt.AddClause(c)
	}
	soft := stmt.SQL.Len() > 0 && m.soft != nil
	if stmt.SQL.Len() == 0 {
		// As gorm:delete builds a hard delete.
		stmt.SQL.Grow(100)
		stmt.AddClauseIfNotExists(clause.Delete{})
		_, queryValues := schema.GetIdentityFieldValuesMap(stmt.Context, stmt.ReflectValue, stmt.Schema.PrimaryFields)
		column, values := schema.ToQueryValues(stmt.Table, stmt.Schema.PrimaryFieldDBNames, queryValues)
		if len(values) > 0 {
			stmt.AddClause(clause.Where{Exprs: []clause.Expression{clause.IN{Column: column, Values: values}}})
		}
		if stmt.ReflectValue.CanAddr() && stmt.Dest != stmt.Model && stmt.Model != nil {
			_, queryValues = schema.GetIdentityFieldValuesMap(stmt.Context, reflect.ValueOf(stmt.Model), stmt.Schema.PrimaryFields)
			column, values = schema.ToQueryValues(stmt.Table, stmt.Schema.PrimaryFieldDBNames, queryValues)
			if len(values) > 0 {
				stmt.AddClause(clause.Where{Exprs: []clause.Expression{clause.IN{Column: column, Values: values}}})
			}
		}
		stmt.AddClauseIfNotExists(clause.From{})
		stmt.Build(stmt.BuildClauses...)
	}
	if db.Error != nil || db.DryRun || missingWhere(db) {
		return
	}
	oldCols := m.oldCols()
	rows, err := selectRows(db, m, oldCols, whereOf(stmt))
	if err != nil {
		db.AddError(err)
		return
	}
	if len(rows) == 0 {
		return
	}
	st := ensureState(db, m)
	op := outbox.OpDelete
	if soft {
		op = outbox.OpSoftDelete
	}
	events := make([]outbox.Event, 0, len(rows))
	for _, r := range rows {
		e := outbox.Event{Table: m.spec.Source, Key: r.key, Op: op, At: st.at}
		if m.external {
			e.Old = r.vals
		}
		events = append(events, e)
	}
	st.pending = func(*gorm.DB) []outbox.Event { return events }
}
