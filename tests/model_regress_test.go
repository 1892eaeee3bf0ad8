package tests

import (
	"context"
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// Regressions found by TestModelGorm, reduced to their minimal form.

// RegDoc is a minimal indexed model.
type RegDoc struct {
	ID        int64
	Title     string            `fts5:"external=false"`
	Embedding vecsink.Embedding `vec:"dim=2"`
}

func regSetup(t *testing.T, opts ...indexer.Option) (*gorm.DB, *indexer.Indexer) {
	t.Helper()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &RegDoc{}))
	ix, err := indexer.New(db, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return db, ix
}

func regVectors(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, db.Raw("SELECT count(*) FROM "+outbox.Quote(reliab.Live(t, sqlDB, "reg_docs_vec"))).Scan(&n).Error)
	return n
}

// A row hard-deleted through gorm, whose key is then reused by a row
// inserted with raw SQL (SQLite reuses the largest rowid after it is
// deleted), must not get the deleted row's vector back: the new row has no
// vector. Before the fix the indexer took "the latest vector in the log" and
// ignored the hard delete in between, on every path: applying the pending
// events, rebuilding from a retained log, and replaying it.
func TestRegressHardDeleteEndsTheVector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, path := range []string{"drain", "drain across batches", "rebuild", "replay", "fold then rebuild"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			opts := []indexer.Option{indexer.WithRetention(-1)}
			if path == "fold then rebuild" {
				// The delete is in the batch, the later update of the row
				// inserted again is folded into it: the folded event must
				// still say "no vector", or a rebuild takes the vector
				// from before the delete.
				opts = append(opts, indexer.WithBatchSize(1))
				db, ix := regSetup(t, opts...)
				require.NoError(t, db.Create(&RegDoc{ID: 1, Title: "first", Embedding: vecsink.Embedding{1, 2}}).Error)
				_, err := ix.Drain(ctx)
				require.NoError(t, err)
				require.NoError(t, db.Delete(&RegDoc{ID: 1}).Error)
				require.NoError(t, db.Exec("INSERT INTO reg_docs (id, title) VALUES (1, 'raw')").Error)
				require.NoError(t, db.Model(&RegDoc{ID: 1}).Update("title", "second").Error)
				_, err = ix.Drain(ctx)
				require.NoError(t, err)
				require.Zero(t, regVectors(t, db), "the raw row has no vector after a drain")
				require.NoError(t, ix.Rebuild(ctx))
				require.Zero(t, regVectors(t, db), "the raw row has no vector after a rebuild")
				require.NoError(t, ix.Replay(ctx, 0))
				require.Zero(t, regVectors(t, db), "the raw row has no vector after a replay")
				return
			}
			if path == "drain across batches" {
				opts = append(opts, indexer.WithBatchSize(1))
			}
			db, ix := regSetup(t, opts...)
			require.NoError(t, db.Create(&RegDoc{ID: 1, Title: "first", Embedding: vecsink.Embedding{1, 2}}).Error)
			if path == "drain across batches" {
				// The in-batch event is a plain update without a vector; the
				// delete is a later event of the same key, folded into it.
				_, err := ix.Drain(ctx)
				require.NoError(t, err)
				require.NoError(t, db.Model(&RegDoc{ID: 1}).Update("title", "second").Error)
			}
			if path == "rebuild" || path == "replay" {
				_, err := ix.Drain(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(1), regVectors(t, db))
			}
			require.NoError(t, db.Delete(&RegDoc{ID: 1}).Error)
			if path == "rebuild" || path == "replay" {
				_, err := ix.Drain(ctx)
				require.NoError(t, err)
				require.Zero(t, regVectors(t, db))
			}
			require.NoError(t, db.Exec("INSERT INTO reg_docs (id, title) VALUES (1, 'raw')").Error)
			if path == "drain across batches" {
				// A later gorm write of the raw row, without a vector.
				require.NoError(t, db.Model(&RegDoc{ID: 1}).Update("title", "third").Error)
			}
			_, err := ix.Drain(ctx)
			require.NoError(t, err)
			require.Zero(t, regVectors(t, db), "the raw row has no vector after a drain")
			if path == "rebuild" || path == "replay" {
				require.NoError(t, ix.Rebuild(ctx))
				require.Zero(t, regVectors(t, db), "the raw row has no vector after a rebuild")
			}
			if path == "replay" {
				require.NoError(t, ix.Replay(ctx, 0))
				require.Zero(t, regVectors(t, db), "the raw row has no vector after a replay")
			}
			// And the whole log, applied again from scratch, agrees.
			require.NoError(t, ix.Rebuild(ctx))
			require.NoError(t, ix.Replay(ctx, 0))
			require.Zero(t, regVectors(t, db))
		})
	}
}
