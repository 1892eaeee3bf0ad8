package gormplugin

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
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
	return p.cacheFor(pool).len()
}

// cachedQueries returns the prepared statements' texts, most recent first.
func cachedQueries(t *testing.T, p *Plugin, db *gorm.DB) []string {
	t.Helper()
	pool, err := db.DB()
	require.NoError(t, err)
	c := p.cacheFor(pool)
	c.mu.Lock()
	defer c.mu.Unlock()
	var qs []string
	for e := c.lru.Front(); e != nil; e = e.Next() {
		qs = append(qs, e.Value.(*cached).q)
	}
	return qs
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
		// gorm's INSERT (whose compilation includes the capture trigger's)
		// and the plugin's UPDATE that puts the vector on the event.
		qs := cachedQueries(t, pl, db)
		require.Len(t, qs, 2)
		require.Contains(t, qs[0]+qs[1], "INSERT INTO `cached_docs`")
		require.Contains(t, qs[0]+qs[1], "UPDATE oi_events SET vec")
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
		require.Equal(t, 2, cachedStmts(t, pl, db))

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

type hookedDoc struct {
	ID        uint
	Title     string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=2"`
	sawTx     *[]bool
}

func (d *hookedDoc) BeforeCreate(tx *gorm.DB) error { return d.saw(tx) }
func (d *hookedDoc) AfterCreate(tx *gorm.DB) error  { return d.saw(tx) }
func (d *hookedDoc) AfterUpdate(tx *gorm.DB) error  { return d.saw(tx) }
func (d *hookedDoc) AfterDelete(tx *gorm.DB) error  { return d.saw(tx) }
func (d *hookedDoc) saw(tx *gorm.DB) error {
	if d.sawTx != nil {
		_, ok := tx.Statement.ConnPool.(*sql.Tx)
		*d.sawTx = append(*d.sawTx, ok)
	}
	return nil
}

// gorm's writes of indexed models run on prepared statements, and only they:
// hooks see the plain *sql.Tx, and the cache stays bounded however many
// different statements the application sends.
func TestGormWritesArePreparedAndBounded(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	pl := New().(*Plugin)
	require.NoError(t, db.Use(pl))
	require.NoError(t, Migrate(db, &hookedDoc{}))
	ctx := context.Background()
	db = db.WithContext(ctx)

	var saw []bool
	for i := range 3 {
		d := &hookedDoc{Title: fmt.Sprint("t", i), Embedding: vecsink.Embedding{1, float32(i)}, sawTx: &saw}
		require.NoError(t, db.Create(d).Error)
		require.NoError(t, db.Model(d).Update("title", fmt.Sprint("u", i)).Error)
	}
	require.NotEmpty(t, saw)
	for _, ok := range saw {
		require.True(t, ok, "a hook saw the plugin's connection wrapper")
	}
	qs := cachedQueries(t, pl, db)
	require.True(t, slices.ContainsFunc(qs, func(q string) bool { return strings.HasPrefix(q, "INSERT INTO `hooked_docs`") }), "%q", qs)
	require.True(t, slices.ContainsFunc(qs, func(q string) bool { return strings.HasPrefix(q, "UPDATE `hooked_docs`") }), "%q", qs)

	// Deletes with IN lists of every length from 1 to 2*maxCachedStmts:
	// each is a different statement; the cache keeps the newest ones.
	var ids []uint
	for i := range 2 * maxCachedStmts {
		d := hookedDoc{Title: fmt.Sprint("d", i)}
		require.NoError(t, db.Create(&d).Error)
		ids = append(ids, d.ID)
	}
	for n := 1; n <= 2*maxCachedStmts && len(ids) > 0; n++ {
		k := min(n, len(ids))
		require.NoError(t, db.Delete(&hookedDoc{sawTx: &saw}, ids[:k]).Error)
		ids = ids[k:]
	}
	require.LessOrEqual(t, cachedStmts(t, pl, db), maxCachedStmts)
	for _, ok := range saw {
		require.True(t, ok)
	}

	// Every write was captured: 3 + 2*maxCachedStmts inserts, 3 updates,
	// 2*maxCachedStmts deletes, in that order of keys.
	var n int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM oi_events WHERE tbl = 'hooked_docs'`).Scan(&n).Error)
	require.Equal(t, int64(3+3+4*maxCachedStmts), n)
	var left int64
	require.NoError(t, db.Model(&hookedDoc{}).Count(&left).Error)
	require.Equal(t, int64(3), left)
}
