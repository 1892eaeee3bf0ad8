package gormplugin

import (
	"context"
	"database/sql"

	"gorm.io/gorm"
)

// preparedTx is the connection gorm's own INSERT, UPDATE or DELETE of an
// indexed model runs on: the statement's *sql.Tx, with the statements that
// gorm sends looked up in the plugin's cache of prepared statements. gorm
// prepares nothing by default, and compiling a write to an indexed table
// compiles its capture trigger too; reusing the compiled statement keeps
// capture close to the cost of the write alone.
//
// The plugin puts it in place right before gorm's write callback and takes
// it away right after, so hooks, associations and other plugins see the
// plain *sql.Tx.
type preparedTx struct {
	tx    *sql.Tx
	pool  *sql.DB
	cache *stmtCache
}

var (
	_ gorm.ConnPool       = (*preparedTx)(nil)
	_ gorm.TxCommitter    = (*preparedTx)(nil)
	_ gorm.GetDBConnector = (*preparedTx)(nil)
)

// PrepareContext implements gorm.ConnPool.
func (c *preparedTx) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return c.tx.PrepareContext(ctx, q)
}

// ExecContext implements gorm.ConnPool.
func (c *preparedTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := c.cache.lookup(q); s != nil {
		ts := c.tx.StmtContext(ctx, s)
		defer ts.Close() // releases the binding, keeps the prepared statement
		return ts.ExecContext(ctx, args...)
	}
	return c.tx.ExecContext(ctx, q, args...)
}

// QueryContext implements gorm.ConnPool. The transaction's binding of the
// statement is released when the transaction ends (closing it here would
// wait for the rows the caller has yet to read).
func (c *preparedTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := c.cache.lookup(q); s != nil {
		return c.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return c.tx.QueryContext(ctx, q, args...)
}

// QueryRowContext implements gorm.ConnPool.
func (c *preparedTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s := c.cache.lookup(q); s != nil {
		return c.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return c.tx.QueryRowContext(ctx, q, args...)
}

// Commit implements gorm.TxCommitter.
func (c *preparedTx) Commit() error { return c.tx.Commit() }

// Rollback implements gorm.TxCommitter.
func (c *preparedTx) Rollback() error { return c.tx.Rollback() }

// GetDBConn implements gorm.GetDBConnector: db.DB() finds the pool.
func (c *preparedTx) GetDBConn() (*sql.DB, error) { return c.pool, nil }

// usePrepared runs gorm's write of an indexed model on a preparedTx (when
// the write is in a *sql.Tx; gorm's PrepareStmt mode prepares on its own).
func (p *Plugin) usePrepared(db *gorm.DB) {
	if db.Error != nil || db.DryRun {
		return
	}
	tx, ok := db.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return
	}
	if m := p.modelOf(db); m == nil || m.err != nil || m.dropped.Load() {
		return
	}
	pool, err := db.DB()
	if err != nil {
		return
	}
	db.Statement.ConnPool = &preparedTx{tx: tx, pool: pool, cache: p.cacheFor(pool)}
}

// unusePrepared puts the plain *sql.Tx back after gorm's write.
func (p *Plugin) unusePrepared(db *gorm.DB) {
	if c, ok := db.Statement.ConnPool.(*preparedTx); ok {
		db.Statement.ConnPool = c.tx
	}
}

// prepareIdleDelete prepares wanted statements before a delete of an
// indexed model that is not in a transaction yet.
func (p *Plugin) prepareIdleDelete(db *gorm.DB) {
	if db.Error != nil || db.DryRun {
		return
	}
	if m := p.modelOf(db); m != nil && m.err == nil {
		p.prepareIdle(db)
	}
}
