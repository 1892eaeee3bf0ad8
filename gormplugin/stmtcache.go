package gormplugin

import (
	"container/list"
	"context"
	"database/sql"
	"sync"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// maxCachedStmts bounds the statements kept prepared per database: the
// plugin's own (one per statement size of the outbox writes) and gorm's
// INSERT/UPDATE/DELETE of indexed models. The least recently used one is
// closed when a new one is prepared.
const maxCachedStmts = 64

// stmtCache keeps statements prepared on one *sql.DB, so that a write
// inside a transaction binds a statement that SQLite has already compiled
// on the transaction's connection instead of preparing it again (the
// drivers prepare every Exec). For the writes of an indexed model this
// matters: compiling a statement also compiles the capture trigger it
// fires, which costs more than the INSERT itself.
//
// A statement is prepared on the pool only when the plugin holds no
// connection (the first callback of a write that is not yet in a
// transaction), so the preparation never waits for a connection that the
// write itself holds. Inside a transaction, Tx.StmtContext binds the pooled
// statement to the transaction's connection; database/sql prepares it on
// that connection once and reuses it afterwards.
type stmtCache struct {
	mu     sync.Mutex
	stmts  map[string]*list.Element // by query text; values are *cached
	lru    list.List                // front: most recently used
	wanted []string                 // queries executed unprepared, to prepare when idle
}

type cached struct {
	q string
	s *sql.Stmt
}

// cacheFor returns the statement cache of pool, creating it.
func (p *Plugin) cacheFor(pool *sql.DB) *stmtCache {
	if c, ok := p.stmts.Load(pool); ok {
		return c.(*stmtCache)
	}
	c, _ := p.stmts.LoadOrStore(pool, &stmtCache{stmts: map[string]*list.Element{}})
	return c.(*stmtCache)
}

// lookup returns the prepared statement for q, or records that q is wanted.
func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.stmts[q]; e != nil {
		c.lru.MoveToFront(e)
		return e.Value.(*cached).s
	}
	if len(c.wanted) < maxCachedStmts {
		for _, w := range c.wanted {
			if w == q {
				return nil
			}
		}
		c.wanted = append(c.wanted, q)
	}
	return nil
}

// prepareWanted prepares the wanted statements on pool. It is called only
// when the caller holds none of pool's connections. A statement that fails
// to prepare (the outbox table does not exist yet) is forgotten; it is
// wanted again after its next unprepared execution. Closing an evicted
// statement is safe while a transaction still uses it: database/sql closes
// it when the last transaction bound to it ends.
func (c *stmtCache) prepareWanted(ctx context.Context, pool *sql.DB) {
	c.mu.Lock()
	wanted := c.wanted
	c.wanted = nil
	c.mu.Unlock()
	for _, q := range wanted {
		s, err := pool.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		var evicted []*sql.Stmt
		c.mu.Lock()
		if c.stmts[q] == nil {
			c.stmts[q] = c.lru.PushFront(&cached{q: q, s: s})
			s = nil
			for c.lru.Len() > maxCachedStmts {
				old := c.lru.Remove(c.lru.Back()).(*cached)
				delete(c.stmts, old.q)
				evicted = append(evicted, old.s)
			}
		}
		c.mu.Unlock()
		if s != nil {
			_ = s.Close()
		}
		for _, s := range evicted {
			_ = s.Close()
		}
	}
}

// len reports how many statements are prepared.
func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// hasWanted reports whether statements wait to be prepared.
func (c *stmtCache) hasWanted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.wanted) > 0
}

// prepareIdle prepares the wanted statements when the statement is not in a
// transaction (so that the plugin holds no connection of the pool).
func (p *Plugin) prepareIdle(db *gorm.DB) {
	pool, ok := db.Statement.ConnPool.(*sql.DB)
	if !ok {
		return
	}
	c, ok := p.stmts.Load(pool)
	if !ok || !c.(*stmtCache).hasWanted() {
		return
	}
	c.(*stmtCache).prepareWanted(db.Statement.Context, pool)
}

// appendExec returns how events are appended on the statement's connection
// (see exec).
func (p *Plugin) appendExec(db *gorm.DB) outbox.ExecFunc {
	return func(ctx context.Context, q string, args ...any) error {
		_, err := p.exec(ctx, db, q, args...)
		return err
	}
}

// exec runs q on the statement's connection: inside a *sql.Tx with a pooled
// prepared statement when there is one, else with ConnPool.ExecContext.
func (p *Plugin) exec(ctx context.Context, db *gorm.DB, q string, args ...any) (sql.Result, error) {
	conn := db.Statement.ConnPool
	if tx, inTx := conn.(*sql.Tx); inTx {
		if pool, err := db.DB(); err == nil { // the pool that tx belongs to
			if s := p.cacheFor(pool).lookup(q); s != nil {
				ts := tx.StmtContext(ctx, s)
				defer ts.Close() // releases the binding, keeps the prepared statement
				return ts.ExecContext(ctx, args...)
			}
		}
	}
	return conn.ExecContext(ctx, q, args...)
}
