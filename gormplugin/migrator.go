package gormplugin

import (
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

// AutoMigrate prepares tagged models, then delegates.
func (m *migrator) AutoMigrate(values ...any) error {
	m.prepare(values)
	return m.Migrator.AutoMigrate(values...)
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
