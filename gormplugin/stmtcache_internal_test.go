package gormplugin

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

type cachedDoc struct {
	ID        uint
	Title     string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=2"`
}

func cachedStmts(t *testing.T, p *Plugin, db *gorm.DB) int {
	t.Helper()
	pool, err := db.DB()
	require.NoError(t, err)
	c := p.cacheFor(pool)
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stmts)
}

// The outbox INSERT is prepared on the pool after the first append and then
// bound to later transactions; the events are the same either way, and a
// pool of one connection never waits for the connection its own write
// holds.
func TestOutboxInsertIsPreparedOnce(t *testing.T) {
	t.Parallel()
	for _, conns := range []int{1, 4} {
		db := testdb.New(t)
		sqlDB, err := db.DB()
		require.NoError(t, err)
		sqlDB.SetMaxOpenConns(conns)
		pl := New().(*Plugin)
		require.NoError(t, db.Use(pl))
		require.NoError(t, Migrate(db, &cachedDoc{}))

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db = db.WithContext(ctx)
		require.Zero(t, cachedStmts(t, pl, db))
		require.NoError(t, db.Create(&cachedDoc{Title: "a", Embedding: vecsink.Embedding{1, 0}}).Error)
		require.Zero(t, cachedStmts(t, pl, db), "prepared when the pool is idle, at the next write")
		require.NoError(t, db.Create(&cachedDoc{Title: "b", Embedding: vecsink.Embedding{0, 1}}).Error)
		require.Equal(t, 1, cachedStmts(t, pl, db))
		// Inside the caller's transaction, with the prepared statement.
		require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
			for _, title := range []string{"c", "d"} {
				if err := tx.Create(&cachedDoc{Title: title}).Error; err != nil {
					return err
				}
			}
			return nil
		}))
		// A rollback still removes the events appended with it.
		require.Error(t, db.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, tx.Create(&cachedDoc{Title: "e"}).Error)
			return sql.ErrTxDone
		}))
		require.Equal(t, 1, cachedStmts(t, pl, db))

		evs, err := outbox.ReadEvents(ctx, sqlDB, 0, 100)
		require.NoError(t, err)
		require.Len(t, evs, 4)
		for i, e := range evs {
			require.Equal(t, int64(i+1), e.Key)
			require.Equal(t, outbox.OpInsert, e.Op)
		}
		require.Len(t, evs[0].Vec, 8)
		require.Len(t, evs[1].Vec, 8)
		require.Equal(t, []byte{}, evs[2].Vec)
	}
}
