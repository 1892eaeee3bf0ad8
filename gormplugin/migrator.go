package gormplugin

import (
	"context"

	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// dialector wraps the application's dialector so that db.Migrator() returns
// a migrator that knows the sidecars. Everything else is delegated.
type dialector struct {
	gorm.Dialector
	p *Plugin
}

var (
	_ gorm.Dialector                     = (*dialector)(nil)
	_ gorm.SavePointerDialectorInterface = (*dialector)(nil)
	_ gorm.ErrorTranslator               = (*dialector)(nil)
)

// Migrator returns the wrapped dialector's migrator, with a DropTable that
// cascades to the sidecars, the registry and the outbox.
func (d *dialector) Migrator(db *gorm.DB) gorm.Migrator {
	return &migrator{Migrator: d.Dialector.Migrator(db), db: db, d: d}
}

// SavePoint delegates to the wrapped dialector.
func (d *dialector) SavePoint(tx *gorm.DB, name string) error {
	if sp, ok := d.Dialector.(gorm.SavePointerDialectorInterface); ok {
		return sp.SavePoint(tx, name)
	}
	return gorm.ErrUnsupportedDriver
}

// RollbackTo delegates to the wrapped dialector.
func (d *dialector) RollbackTo(tx *gorm.DB, name string) error {
	if sp, ok := d.Dialector.(gorm.SavePointerDialectorInterface); ok {
		return sp.RollbackTo(tx, name)
	}
	return gorm.ErrUnsupportedDriver
}

// Translate delegates to the wrapped dialector.
func (d *dialector) Translate(err error) error {
	if t, ok := d.Dialector.(gorm.ErrorTranslator); ok {
		return t.Translate(err)
	}
	return err
}

// migrator is the dialector's migrator with three changes: AutoMigrate and
// CreateTable first prepare tagged models (so that the vector field never
// becomes a column), and DropTable cascades (see DropSidecar).
type migrator struct {
	gorm.Migrator
	db *gorm.DB
	d  *dialector
}

// AutoMigrate prepares tagged models, then delegates, then puts back the
// capture triggers of the tables it recreated.
func (m *migrator) AutoMigrate(values ...any) error {
	m.prepare(values)
	return m.restoreTriggers(m.Migrator.AutoMigrate(values...))
}

// AlterColumn delegates, then puts back the capture triggers: SQLite's
// migrator alters a column by recreating the table.
func (m *migrator) AlterColumn(value any, field string) error {
	return m.restoreTriggers(m.Migrator.AlterColumn(value, field))
}

// DropColumn delegates, then puts back the capture triggers.
func (m *migrator) DropColumn(value any, name string) error {
	return m.restoreTriggers(m.Migrator.DropColumn(value, name))
}

// CreateConstraint delegates, then puts back the capture triggers.
func (m *migrator) CreateConstraint(value any, name string) error {
	return m.restoreTriggers(m.Migrator.CreateConstraint(value, name))
}

// DropConstraint delegates, then puts back the capture triggers.
func (m *migrator) DropConstraint(value any, name string) error {
	return m.restoreTriggers(m.Migrator.DropConstraint(value, name))
}

// restoreTriggers re-creates the capture triggers of every registered table
// that lost them, unless err (the migration's) is set.
func (m *migrator) restoreTriggers(err error) error {
	if err != nil {
		return err
	}
	ctx := m.db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	conn := m.db.Statement.ConnPool
	if ok, err := sqlutil.TableExists(ctx, conn, outbox.RegistryTable); err != nil || !ok {
		return err
	}
	_, err = outbox.RestoreTriggers(ctx, conn)
	return err
}

// CreateTable prepares tagged models, then delegates.
func (m *migrator) CreateTable(values ...any) error {
	m.prepare(values)
	return m.Migrator.CreateTable(values...)
}

// DropTable drops the tables and, for indexed ones, their sidecars, registry
// entries and outbox events, all in one transaction.
func (m *migrator) DropTable(values ...any) error {
	return dropTables(m.db, m.d, values)
}

// prepare analyses tagged models and the models they relate to. Tag errors
// are left for Migrate and the writes to report.
func (m *migrator) prepare(values []any) {
	seen := map[any]bool{}
	for _, v := range values {
		if _, isName := v.(string); isName {
			continue
		}
		stmt := &gorm.Statement{DB: m.db}
		if err := stmt.Parse(v); err != nil || stmt.Schema == nil {
			continue
		}
		m.d.p.prepareSchema(stmt.Schema, seen)
	}
}
