package gormplugin

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// PluginName is the name under which the plugin registers in gorm
// (db.Config.Plugins).
const PluginName = "outboxindexer:gormplugin"

// Plugin is the gorm plugin that captures writes of tagged models into the
// outbox. Create it with New and install it with db.Use.
type Plugin struct {
	cfg    config
	models *models
	stmts  sync.Map // *sql.DB → *stmtCache: prepared outbox INSERTs
}

var _ gorm.Plugin = (*Plugin)(nil)

// New returns the capture plugin. Install it once per *gorm.DB:
//
//	db.Use(gormplugin.New())
func New(opts ...Option) gorm.Plugin {
	p := &Plugin{models: &models{}}
	for _, o := range opts {
		o(&p.cfg)
	}
	return p
}

// Name implements gorm.Plugin.
func (p *Plugin) Name() string { return PluginName }

// Initialize implements gorm.Plugin: it registers the callbacks that add
// vectors to what the capture triggers record (deletes need none), and
// wraps the dialector so that db.Migrator() cascades DropTable to the
// sidecars, the registry and the outbox.
func (p *Plugin) Initialize(db *gorm.DB) error {
	cr := db.Callback().Create()
	up := db.Callback().Update()
	steps := []error{
		cr.Before("*").Register("outboxindexer:begin", p.begin),
		cr.Before("gorm:create").Register("outboxindexer:before_create", p.beforeCreate),
		// Right after the INSERT, before associations are saved: the
		// trigger's events of the statement are then the newest in the log.
		cr.After("gorm:create").Before("gorm:save_after_associations").Register("outboxindexer:after_create", p.afterCreate),
		cr.After("*").Register("outboxindexer:finish", p.finish),

		up.Before("*").Register("outboxindexer:begin", p.begin),
		up.Before("gorm:update").Register("outboxindexer:before_update", p.beforeUpdate),
		up.After("gorm:update").Before("gorm:save_after_associations").Register("outboxindexer:after_update", p.afterUpdate),
		up.After("*").Register("outboxindexer:finish", p.finish),

		db.Callback().Delete().After("*").Register("outboxindexer:finish", p.finish),

		// gorm's own write runs on a preparedTx (see prepared_tx.go), and
		// only it: hooks and associations see the plain *sql.Tx.
		cr.After("gorm:save_before_associations").Before("gorm:create").Register("outboxindexer:use_prepared", p.usePrepared),
		cr.After("gorm:create").Before("gorm:save_after_associations").Register("outboxindexer:unuse_prepared", p.unusePrepared),
		up.After("gorm:save_before_associations").Before("gorm:update").Register("outboxindexer:use_prepared", p.usePrepared),
		up.After("gorm:update").Before("gorm:save_after_associations").Register("outboxindexer:unuse_prepared", p.unusePrepared),
		db.Callback().Delete().Before("*").Register("outboxindexer:prepare_idle", p.prepareIdleDelete),
		db.Callback().Delete().After("gorm:delete_before_associations").Before("gorm:delete").Register("outboxindexer:use_prepared", p.usePrepared),
		db.Callback().Delete().After("gorm:delete").Before("gorm:after_delete").Register("outboxindexer:unuse_prepared", p.unusePrepared),

		// Queries read the fields that the plugin adjusts on first sight of a
		// tagged model; passing through the same cached lookup orders that
		// first adjustment before any concurrent read.
		db.Callback().Query().Before("*").Register("outboxindexer:prepare", p.prepare),
	}
	for _, err := range steps {
		if err != nil {
			return fmt.Errorf("gormplugin: register callbacks: %w", err)
		}
	}
	if _, ok := db.Dialector.(*dialector); !ok {
		db.Dialector = &dialector{Dialector: db.Dialector, p: p}
	}
	return nil
}

// pluginOf returns the plugin installed on db, or nil.
func pluginOf(db *gorm.DB) *Plugin {
	if db == nil || db.Config == nil {
		return nil
	}
	if v, ok := db.Plugins[PluginName]; ok {
		if p, ok := v.(*Plugin); ok {
			return p
		}
	}
	return nil
}

// modelsOf returns the model cache of the plugin installed on db, or a
// private one when the plugin is not installed (DropSidecar works without it).
func modelsOf(db *gorm.DB) *models {
	if p := pluginOf(db); p != nil {
		return p.models
	}
	return &models{}
}

// stateKey keys a statement's capture state in Statement.Settings. The
// statement pointer is part of the key because gorm copies a parent
// statement's Settings into the statements that save its associations.
type stateKey struct{ stmt *gorm.Statement }

// state is the capture state of one write statement.
type state struct {
	m       *model
	ownTx   bool     // the plugin opened the transaction (SkipDefaultTransaction)
	wrote   bool     // events were appended
	cleanup []func() // undo changes made to the caller's values and the statement
	at      time.Time

	// create
	rows     rowSet
	vecs     [][]byte   // per row: the encoded vector of the first vector field, nil for none
	more     [][][]byte // per further vector field (m.vecs[1:]), per row: the same
	conflict conflictPlan
	// update
	update *vectorUpdate
}

// hasVec reports whether create row i carries a vector of any field.
func (st *state) hasVec(i int) bool {
	if st.vecs[i] != nil {
		return true
	}
	for _, col := range st.more {
		if col[i] != nil {
			return true
		}
	}
	return false
}

func getState(db *gorm.DB) *state {
	if v, ok := db.Statement.Settings.Load(stateKey{db.Statement}); ok {
		return v.(*state)
	}
	return nil
}

// ensureState returns the statement's capture state, creating it. The state
// is created only when a callback has something to keep (its own
// transaction, changes to undo, events to append), so that writes the plugin
// has nothing to do for, such as updates of non-indexed columns, cost no
// more than a model lookup.
func ensureState(db *gorm.DB, m *model) *state {
	if st := getState(db); st != nil {
		return st
	}
	st := &state{m: m, at: time.Now()}
	db.Statement.Settings.Store(stateKey{db.Statement}, st)
	return st
}

// modelOf returns the analysis of the statement's model, or nil when the
// statement has no schema or the model is not indexed.
func (p *Plugin) modelOf(db *gorm.DB) *model {
	if db.Statement.Schema == nil {
		return nil
	}
	if m := p.models.get(db.Statement.Schema); m.indexed {
		return m
	}
	return nil
}

// begin is the first callback of create, update and delete: it looks up the
// model and, for indexed models under SkipDefaultTransaction, opens the
// transaction that keeps the write and its events atomic.
func (p *Plugin) begin(db *gorm.DB) {
	stmt := db.Statement
	if db.Error != nil {
		return
	}
	m := p.modelOf(db)
	if m == nil {
		return // no model (db.Table without one) or not indexed: the triggers capture it
	}
	if m.err != nil {
		db.AddError(m.err)
		return
	}
	if db.DryRun || m.dropped.Load() {
		return
	}
	p.prepareIdle(db)
	if !db.SkipDefaultTransaction {
		return
	}
	if _, inTx := stmt.ConnPool.(gorm.TxCommitter); inTx {
		return
	}
	tx := db.Begin()
	if tx.Error != nil {
		db.AddError(fmt.Errorf("gormplugin: begin transaction for %s: %w", m.spec.Source, tx.Error))
		return
	}
	stmt.ConnPool = tx.Statement.ConnPool
	ensureState(db, m).ownTx = true
}

// prepare makes sure the statement's model has been analysed.
func (p *Plugin) prepare(db *gorm.DB) {
	if db.Statement.Schema != nil {
		p.models.get(db.Statement.Schema)
	}
}

// capturing returns the state of a statement of an indexed model (nil
// when no callback created one yet), its model, and whether its writes are
// captured.
func (p *Plugin) capturing(db *gorm.DB) (*state, *model, bool) {
	if db.Error != nil {
		return nil, nil, false
	}
	m := p.modelOf(db)
	if m == nil || m.err != nil {
		return nil, nil, false
	}
	st := getState(db)
	if m.dropped.Load() {
		return st, m, false
	}
	if !strings.EqualFold(db.Statement.Table, m.spec.Source) {
		// The model is written to another table (db.Table): that table is
		// not indexed. The vector is still kept out of the SQL. SQLite
		// table names are case-insensitive: "ARTICLES" is the source.
		return st, m, false
	}
	return st, m, true
}

func (p *Plugin) appendEvents(db *gorm.DB, st *state, events []outbox.Event) {
	if len(events) == 0 {
		return
	}
	if err := outbox.AppendWith(db.Statement.Context, p.appendExec(db), events); err != nil {
		db.AddError(fmt.Errorf("gormplugin: record %d change events of %s (did you run gormplugin.Migrate?): %w", len(events), st.m.spec.Source, err))
		return
	}
	st.wrote = true
}

// finish is the last callback: it undoes temporary changes, commits or rolls
// back the plugin's own transaction and notifies.
func (p *Plugin) finish(db *gorm.DB) {
	st := getState(db)
	if st == nil {
		if p.cfg.notify != nil && db.Error == nil && db.RowsAffected > 0 && !db.DryRun {
			if _, _, ok := p.capturing(db); ok {
				p.cfg.notify()
			}
		}
		return
	}
	db.Statement.Settings.Delete(stateKey{db.Statement})
	for i := len(st.cleanup) - 1; i >= 0; i-- {
		st.cleanup[i]()
	}
	if st.ownTx {
		if tx, ok := db.Statement.ConnPool.(gorm.TxCommitter); ok {
			if db.Error != nil {
				_ = tx.Rollback()
			} else if err := tx.Commit(); err != nil {
				db.AddError(fmt.Errorf("gormplugin: commit %s: %w", st.m.spec.Source, err))
			}
		}
		db.Statement.ConnPool = db.ConnPool
	}
	if (st.wrote || db.RowsAffected > 0) && db.Error == nil && p.cfg.notify != nil {
		p.cfg.notify()
	}
}
