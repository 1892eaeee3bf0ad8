package gormplugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// DropSidecar drops the sidecars of model (a model value such as &Article{},
// or a source table name), deletes its registry entry and purges all of its
// outbox events — pending, retained and dead-lettered — in one transaction.
// The source table is kept. It is idempotent, and a no-op for a table that
// is not indexed (or already dropped by the DropTable cascade). Other tables
// are untouched. In this process, writes of the model then record no events
// until Migrate runs again.
func DropSidecar(db *gorm.DB, model any) error {
	t, err := resolveTarget(db, model)
	if err != nil {
		return err
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		return dropSidecars(tx, t)
	})
	if err != nil {
		return err
	}
	t.markDropped(db)
	return nil
}

// target is a table being dropped, with its model analysis when known.
type target struct {
	table string
	m     *model // nil for table names the plugin has not seen
}

func (t target) markDropped(db *gorm.DB) {
	if t.m != nil && t.m.indexed {
		t.m.dropped.Store(true)
	}
	if p := pluginOf(db); p != nil {
		p.models.m.Range(func(_, v any) bool {
			if m := v.(*model); m.indexed && m.spec != nil && m.spec.Source == t.table {
				m.dropped.Store(true)
			}
			return true
		})
	}
}

func resolveTarget(db *gorm.DB, value any) (target, error) {
	switch v := value.(type) {
	case string:
		if !outbox.ValidIdent(v) {
			return target{}, fmt.Errorf("%w: table name %q is not a plain SQL name", ErrBadTag, v)
		}
		t := target{table: v}
		if p := pluginOf(db); p != nil {
			t.m = p.models.forTable(v)
		}
		return t, nil
	case nil:
		return target{}, fmt.Errorf("gormplugin: nil model")
	}
	m, err := modelsOf(db).parseModel(db, value)
	if err != nil {
		return target{}, err
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(value); err != nil {
		return target{}, err
	}
	return target{table: stmt.Schema.Table, m: m}, nil
}

// dropSidecars drops the sidecars named by the registry entry of t.table and
// by the model's tags, deletes the registry entry and purges the events. Run
// it inside a transaction.
func dropSidecars(tx *gorm.DB, t target) error {
	ctx := tx.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	conn := tx.Statement.ConnPool
	var specs []*outbox.Spec
	registry, err := sqlutil.TableExists(ctx, conn, outbox.RegistryTable)
	if err != nil {
		return fmt.Errorf("gormplugin: %w", err)
	}
	if registry {
		s, err := outbox.LoadSpec(ctx, conn, t.table)
		switch {
		case err == nil:
			specs = append(specs, s)
		case errors.Is(err, outbox.ErrNotRegistered), errors.Is(err, outbox.ErrBadSpec):
			// nothing registered, or an unreadable entry: it is deleted below
		default:
			return err
		}
	}
	if t.m != nil && t.m.indexed && t.m.spec != nil && t.m.spec.Source == t.table {
		specs = append(specs, t.m.spec)
	}
	for _, s := range specs {
		if err := vecsink.Drop(ctx, conn, s); err != nil {
			return fmt.Errorf("gormplugin: drop sidecars of %s: %w", t.table, err)
		}
		if err := ftssink.Drop(ctx, conn, s); err != nil {
			return fmt.Errorf("gormplugin: drop sidecars of %s: %w", t.table, err)
		}
	}
	if registry {
		if err := outbox.DeleteSpec(ctx, conn, t.table); err != nil {
			return fmt.Errorf("gormplugin: drop sidecars of %s: %w", t.table, err)
		}
	}
	return nil
}

// dropTables is the DropTable cascade: sidecars, registry entries, events
// and the source tables, in one transaction.
func dropTables(db *gorm.DB, d *dialector, values []any) error {
	targets := make([]target, len(values))
	for i, v := range values {
		t, err := resolveTarget(db, v)
		if err != nil {
			return err
		}
		targets[i] = t
	}
	drop := func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			for _, t := range targets {
				if err := dropSidecars(tx, t); err != nil {
					return err
				}
			}
			return d.Dialector.Migrator(tx.Session(&gorm.Session{})).DropTable(values...)
		})
	}
	var err error
	if _, inTx := db.Statement.ConnPool.(gorm.TxCommitter); inTx {
		err = drop(db)
	} else {
		// Like gorm's SQLite migrator, drop with foreign keys off (a child
		// table's constraint would refuse the implicit DELETE of a parent).
		// The pragma is a no-op inside a transaction, so it is set on one
		// pinned connection around the transaction.
		err = db.Connection(func(conn *gorm.DB) (err error) {
			var fk int
			if err := conn.Raw("PRAGMA foreign_keys").Scan(&fk).Error; err != nil {
				return err
			}
			if fk == 1 {
				if err := conn.Exec("PRAGMA foreign_keys = OFF").Error; err != nil {
					return err
				}
				// The connection goes back to the pool: it must not keep
				// foreign keys off.
				defer func() {
					if ferr := conn.Exec("PRAGMA foreign_keys = ON").Error; ferr != nil && err == nil {
						err = fmt.Errorf("gormplugin: restore foreign_keys: %w", ferr)
					}
				}()
			}
			return drop(conn)
		})
	}
	if err != nil {
		return err
	}
	for _, t := range targets {
		t.markDropped(db)
	}
	return nil
}

// prepareSchema analyses s and the schemas it relates to, so that vector
// fields are hidden before gorm migrates them.
func (p *Plugin) prepareSchema(s *schema.Schema, seen map[any]bool) {
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	p.models.get(s)
	for _, rel := range s.Relationships.Relations {
		p.prepareSchema(rel.FieldSchema, seen)
	}
}
