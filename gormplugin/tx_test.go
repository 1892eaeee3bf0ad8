package gormplugin_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

var errAbort = errors.New("abort")

func TestRollbackLeavesNoEvents(t *testing.T) {
	t.Parallel()
	db := setup(t)
	seed(t, db)
	err := db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Create(&Article{Title: "x", Embedding: vecsink.Embedding{1, 1, 1}}).Error)
		require.NoError(t, tx.Model(&Article{ID: 1}).Update("title", "y").Error)
		require.NoError(t, tx.Delete(&Article{}, 2).Error)
		require.NoError(t, tx.Model(&Article{}).Where("1=1").Update("embedding", vecsink.Embedding{1, 2, 3}).Error)
		require.Len(t, events(t, tx), 6, "visible inside the transaction (row 2 is soft-deleted by then)")
		return errAbort
	})
	require.ErrorIs(t, err, errAbort)
	require.Empty(t, events(t, db))
	require.Equal(t, int64(3), count(t, db, "articles"))
}

func TestNestedTransactionsAndSavepoints(t *testing.T) {
	t.Parallel()
	db := setup(t)
	err := db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Create(&Article{Title: "outer"}).Error)
		require.ErrorIs(t, tx.Transaction(func(tx2 *gorm.DB) error {
			require.NoError(t, tx2.Create(&Article{Title: "inner, rolled back"}).Error)
			return errAbort
		}), errAbort)
		require.NoError(t, tx.Transaction(func(tx2 *gorm.DB) error {
			return tx2.Create(&Note{Slug: "inner, kept"}).Error
		}))
		require.NoError(t, tx.SavePoint("sp").Error)
		require.NoError(t, tx.Create(&Article{Title: "after savepoint"}).Error)
		require.NoError(t, tx.RollbackTo("sp").Error)
		return tx.Model(&Article{ID: 1}).Update("title", "outer2").Error
	})
	require.NoError(t, err)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpInsert, none),
		ev("notes", "inner, kept", outbox.OpInsert, none),
		ev("articles", int64(1), outbox.OpUpdate, nil, "outer", ""),
	}, events(t, db))
	require.Equal(t, int64(1), count(t, db, "articles"))
}

// failEvents makes the outbox reject events of key 666.
func failEvents(t *testing.T, db *gorm.DB) {
	t.Helper()
	require.NoError(t, db.Exec(`CREATE TRIGGER oi_events_fail BEFORE INSERT ON oi_events WHEN NEW.key = 666 BEGIN SELECT RAISE(ABORT, 'outbox full'); END`).Error)
}

func TestAtomicWhenTheOutboxFails(t *testing.T) {
	t.Parallel()
	for _, skip := range []bool{false, true} {
		var notified atomic.Int64
		db := testdb.New(t, &gorm.Config{SkipDefaultTransaction: skip})
		require.NoError(t, db.Use(gormplugin.New(gormplugin.WithNotify(func() { notified.Add(1) }))))
		require.NoError(t, gormplugin.Migrate(db, &Article{}, &Comment{}))
		failEvents(t, db)

		require.Error(t, db.Create(&Article{ID: 666, Title: "x"}).Error)
		require.Zero(t, count(t, db, "articles"), "skip=%v: the row went with the failed event", skip)

		require.NoError(t, db.Create(&Article{ID: 1, Title: "ok"}).Error)
		require.Equal(t, int64(1), notified.Load(), "notified after the commit")
		// Raw SQL is captured too: move the row to key 666 while the outbox
		// accepts it.
		require.NoError(t, db.Exec("DROP TRIGGER oi_events_fail").Error)
		require.NoError(t, db.Exec("UPDATE articles SET id = 666 WHERE id = 1").Error)
		require.NoError(t, db.Exec("DELETE FROM oi_events WHERE key = 666 OR op = 3").Error)
		failEvents(t, db)
		require.Error(t, db.Model(&Article{ID: 666}).Update("title", "y").Error)
		require.Error(t, db.Delete(&Article{ID: 666}).Error)
		var got Article
		require.NoError(t, db.First(&got, 666).Error)
		require.Equal(t, "ok", got.Title, "skip=%v", skip)

		// With SkipDefaultTransaction the plugin opened (and closed) its own
		// transaction; the connection is usable and not left in one.
		require.NoError(t, db.Create(&Article{ID: 2, Title: "later"}).Error)
		require.Equal(t, int64(2), notified.Load())
		require.Equal(t, []outbox.Event{
			ev("articles", int64(1), outbox.OpInsert, none),
			ev("articles", int64(2), outbox.OpInsert, none),
		}, events(t, db))
	}
}

func TestNotifyInsideCallerTransaction(t *testing.T) {
	t.Parallel()
	var notified atomic.Int64
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New(gormplugin.WithNotify(func() { notified.Add(1) }))))
	require.NoError(t, gormplugin.Migrate(db, &Article{}, &Plain{}))
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&Article{Title: "a"}).Error; err != nil {
			return err
		}
		return tx.Model(&Article{ID: 1}).Update("views", 1).Error // no event; it may notify
	}))
	require.NoError(t, db.Create(&Plain{Name: "p"}).Error) // not indexed: no notification
	require.Equal(t, int64(2), notified.Load())
}
