package indexer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// stPost is the model of the SyncTx tests: external-content FTS5 (the mode
// whose exactness depends on before-images) and a vector.
type stPost struct {
	ID        uint
	Title     string            `fts5:"tokenize=porter+unicode61"`
	Body      string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=4;metric=l2"`
}

func stVec(i int) []float32 { return []float32{float32(i), float32(i%5) + 0.5, 1, float32(i % 3)} }

// stEnv is a database with stPost migrated through the capture plugin, a
// one-shot Indexer, and the vectors every row should have.
type stEnv struct {
	t    *testing.T
	ctx  context.Context
	db   *gorm.DB
	sql  *sql.DB
	ix   *indexer.Indexer
	vecs map[int64][]float32 // live rows' vectors (nil: none)
}

func newSTEnv(t *testing.T, opts ...indexer.Option) *stEnv {
	t.Helper()
	return newSTEnvOn(t, testdb.New(t), opts...)
}

func newSTEnvOn(t *testing.T, db *gorm.DB, opts ...indexer.Option) *stEnv {
	t.Helper()
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &stPost{}))
	s, err := db.DB()
	require.NoError(t, err)
	opts = append([]indexer.Option{indexer.WithBackoff(fastBackoff), indexer.WithPollInterval(5 * time.Millisecond)}, opts...)
	ix, err := indexer.New(db, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return &stEnv{t: t, ctx: t.Context(), db: db, sql: s, ix: ix, vecs: map[int64][]float32{}}
}

func (e *stEnv) create(db *gorm.DB, id int, title, body string) {
	e.t.Helper()
	require.NoError(e.t, db.Create(&stPost{ID: uint(id), Title: title, Body: body, Embedding: stVec(id)}).Error)
}

// exact asserts that the sidecars, read on the pool outside any
// transaction, hold exactly the committed source rows: the vec0 rows and
// vectors of e.vecs, and an FTS5 index equal to the source table (FTS5's
// integrity-check with rank 1 compares an external-content index with its
// content table).
func (e *stEnv) exact() {
	e.t.Helper()
	rows, err := e.sql.QueryContext(e.ctx, `SELECT rowid, embedding FROM st_posts_vec`)
	require.NoError(e.t, err)
	got := map[int64][]float32{}
	for rows.Next() {
		var k int64
		var b []byte
		require.NoError(e.t, rows.Scan(&k, &b))
		v, err := outbox.DecodeVector(b)
		require.NoError(e.t, err)
		got[k] = v
	}
	require.NoError(e.t, rows.Err())
	rows.Close()
	want := map[int64][]float32{}
	for k, v := range e.vecs {
		if v != nil {
			want[k] = v
		}
	}
	require.Equal(e.t, want, got, "vec0 rows")
	var ids []int64
	require.NoError(e.t, e.db.Raw(`SELECT id FROM st_posts ORDER BY id`).Scan(&ids).Error)
	var live []int64
	for k := range e.vecs {
		live = append(live, k)
	}
	require.ElementsMatch(e.t, live, ids, "source rows")
	_, err = e.sql.ExecContext(e.ctx, `INSERT INTO st_posts_fts(st_posts_fts, rank) VALUES('integrity-check', 1)`)
	require.NoError(e.t, err, "FTS5 index equals the source table")
	var docs int64
	require.NoError(e.t, e.sql.QueryRowContext(e.ctx, `SELECT count(*) FROM st_posts_fts_docsize`).Scan(&docs))
	require.EqualValues(e.t, len(ids), docs, "FTS5 documents")
	st, err := e.ix.Status(e.ctx, indexer.WithoutCounts())
	require.NoError(e.t, err)
	require.Zero(e.t, st.Pending, "nothing pending")
}

func (e *stEnv) checkpoint(db outbox.DB) int64 {
	e.t.Helper()
	cp, err := outbox.Checkpoint(e.ctx, db, outbox.MainCheckpoint)
	require.NoError(e.t, err)
	return cp
}

// committedVec reports whether the vec0 sidecar holds key, read outside
// any transaction.
func (e *stEnv) committedVec(key int) bool {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.sql.QueryRowContext(e.ctx, `SELECT count(*) FROM st_posts_vec WHERE rowid = ?`, key).Scan(&n))
	return n == 1
}

func hitIDs(hs []ftssink.Hit[stPost]) []uint {
	var out []uint
	for _, h := range hs {
		out = append(out, h.Model.ID)
	}
	return out
}

// A transaction that writes, calls SyncTx and queries through tx sees its
// own writes in KNN and Search, while the committed sidecars do not change
// until it commits; after the commit a Drain has nothing left to do.
//
// With a batch size of 1, SyncTx applies in many batches, and keys of
// external-content FTS5 get floors exactly as in Drain.
func TestSyncTxReadYourWritesAndCommit(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1000, 1} {
		t.Run(fmt.Sprint("batch", batch), func(t *testing.T) {
			t.Parallel()
			testSyncTxCommit(t, batch)
		})
	}
}

func testSyncTxCommit(t *testing.T, batch int) {
	e := newSTEnv(t, indexer.WithBatchSize(batch))
	for i := 1; i <= 3; i++ {
		e.create(e.db, i, "plain title", "ordinary words")
		e.vecs[int64(i)] = stVec(i)
	}
	_, err := e.ix.Drain(e.ctx)
	require.NoError(t, err)
	// Committed before the transaction, not yet applied: SyncTx applies it too.
	e.create(e.db, 4, "harbour lights", "ordinary words")
	e.vecs[4] = stVec(4)
	before := e.checkpoint(e.sql)

	err = e.db.Transaction(func(tx *gorm.DB) error {
		e.create(tx, 5, "volcano islands", "lava and ash")
		require.NoError(t, tx.Model(&stPost{ID: 1}).Update("title", "glacier title").Error)
		require.NoError(t, tx.Delete(&stPost{ID: 2}).Error)
		require.NoError(t, e.ix.SyncTx(e.ctx, tx))

		near, err := vecsink.KNN[stPost](e.ctx, tx, stVec(5), 1)
		require.NoError(t, err)
		require.Len(t, near, 1)
		require.EqualValues(t, 5, near[0].Model.ID)
		require.Zero(t, near[0].Distance)
		hits, err := ftssink.Search[stPost](e.ctx, tx, ftssink.Term("volcano"))
		require.NoError(t, err)
		require.Equal(t, []uint{5}, hitIDs(hits))
		hits, err = ftssink.Search[stPost](e.ctx, tx, ftssink.Term("glacier"))
		require.NoError(t, err)
		require.Equal(t, []uint{1}, hitIDs(hits))
		hits, err = ftssink.Search[stPost](e.ctx, tx, ftssink.Term("harbour"))
		require.NoError(t, err)
		require.Equal(t, []uint{4}, hitIDs(hits))
		all, err := vecsink.KNN[stPost](e.ctx, tx, stVec(2), 10)
		require.NoError(t, err)
		for _, r := range all {
			require.NotEqualValues(t, 2, r.Model.ID, "the deleted row is gone in tx")
		}
		require.Len(t, all, 4)
		head, err := outbox.Head(e.ctx, tx.Statement.ConnPool)
		require.NoError(t, err)
		require.Equal(t, head, e.checkpoint(tx.Statement.ConnPool), "the checkpoint moved in tx")

		// Outside the transaction nothing changed yet.
		require.Equal(t, before, e.checkpoint(e.sql))
		require.False(t, e.committedVec(5))
		require.True(t, e.committedVec(2))

		// Writes after SyncTx are pending again; a second SyncTx applies them.
		e.create(tx, 6, "second round", "more words")
		require.NoError(t, e.ix.SyncTx(e.ctx, tx))
		hits, err = ftssink.Search[stPost](e.ctx, tx, ftssink.Term("round"))
		require.NoError(t, err)
		require.Equal(t, []uint{6}, hitIDs(hits))
		return nil
	})
	require.NoError(t, err)
	e.vecs[5], e.vecs[6] = stVec(5), stVec(6)
	delete(e.vecs, 2)

	n, err := e.ix.Drain(e.ctx)
	require.NoError(t, err)
	require.Zero(t, n, "SyncTx applied everything in the committed transaction")
	e.exact()
	require.False(t, e.ix.LeaseHeld())

	// The chain of before-images goes on from what SyncTx indexed.
	require.NoError(t, e.db.Model(&stPost{ID: 5}).Update("title", "quiet islands").Error)
	n, err = e.ix.Drain(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	e.exact()
	hits, err := ftssink.Search[stPost](e.ctx, e.db, ftssink.Term("volcano"))
	require.NoError(t, err)
	require.Empty(t, hits)
}

// A rollback undoes the writes, their events and their indexing together:
// the sidecars never contain the rolled-back rows, events that were pending
// before the transaction are pending again, and a Drain then brings the
// sidecars to the committed rows exactly.
func TestSyncTxRollback(t *testing.T) {
	t.Parallel()
	e := newSTEnv(t)
	for i := 1; i <= 3; i++ {
		e.create(e.db, i, "plain title", "ordinary words")
		e.vecs[int64(i)] = stVec(i)
	}
	_, err := e.ix.Drain(e.ctx)
	require.NoError(t, err)
	e.create(e.db, 4, "pending before", "ordinary words") // committed, not applied
	e.vecs[4] = stVec(4)
	before := e.checkpoint(e.sql)

	errRollback := errors.New("roll back")
	err = e.db.Transaction(func(tx *gorm.DB) error {
		e.create(tx, 7, "lava flow", "rolled back")
		require.NoError(t, tx.Model(&stPost{ID: 1}).Update("title", "rolled title").Error)
		require.NoError(t, tx.Delete(&stPost{ID: 3}).Error)
		require.NoError(t, e.ix.SyncTx(e.ctx, tx))
		hits, err := ftssink.Search[stPost](e.ctx, tx, ftssink.Term("lava"))
		require.NoError(t, err)
		require.Equal(t, []uint{7}, hitIDs(hits))
		near, err := vecsink.KNN[stPost](e.ctx, tx, stVec(7), 1)
		require.NoError(t, err)
		require.EqualValues(t, 7, near[0].Model.ID)
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)

	require.Equal(t, before, e.checkpoint(e.sql), "the checkpoint did not move")
	require.False(t, e.committedVec(7), "the rolled-back row was never indexed")
	require.True(t, e.committedVec(3), "the rolled-back delete was never applied")
	var n int
	require.NoError(t, e.sql.QueryRowContext(e.ctx, `SELECT count(*) FROM st_posts_fts WHERE st_posts_fts MATCH 'lava OR rolled'`).Scan(&n))
	require.Zero(t, n)
	st, err := e.ix.Status(e.ctx, indexer.WithoutCounts())
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Pending, "the event committed before the transaction is pending again")

	applied, err := e.ix.Drain(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, applied)
	e.exact()
	hits, err := ftssink.Search[stPost](e.ctx, e.db, ftssink.Term("plain"))
	require.NoError(t, err)
	require.ElementsMatch(t, []uint{1, 2, 3}, hitIDs(hits), "row 1 keeps its committed title")
}

// SyncTx alongside a running worker: it neither takes nor disturbs the
// worker's lease, and the worker continues from the checkpoint it left.
func TestSyncTxWithRunningWorker(t *testing.T) {
	t.Parallel()
	e := newSTEnv(t)
	w, err := indexer.Start(e.ctx, e.db, indexer.WithPollInterval(5*time.Millisecond), indexer.WithBackoff(fastBackoff))
	require.NoError(t, err)
	defer w.Close()
	require.Eventually(t, w.Indexer().LeaseHeld, 5*time.Second, time.Millisecond)
	for round := range 20 {
		id := 100 + round
		e.create(e.db, id, "background row", "worker applies it") // the worker races for this one
		e.vecs[int64(id)] = stVec(id)
		require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
			e.create(tx, round+1, "foreground row", "synced in tx")
			if err := e.ix.SyncTx(e.ctx, tx); err != nil {
				return err
			}
			near, err := vecsink.KNN[stPost](e.ctx, tx, stVec(round+1), 1)
			require.NoError(t, err)
			require.EqualValues(t, round+1, near[0].Model.ID)
			return nil
		}))
		e.vecs[int64(round+1)] = stVec(round + 1)
	}
	require.NoError(t, w.Sync(e.ctx))
	require.True(t, w.Indexer().LeaseHeld(), "the worker kept its lease")
	e.exact()
}

// SyncTx needs a transaction; when applying fails, it undoes its own work
// and leaves the caller's transaction as it was, so committing it anyway
// keeps the sidecars exact once the worker has dealt with the failure.
func TestSyncTxErrors(t *testing.T) {
	t.Parallel()
	e := newSTEnv(t, indexer.WithMaxAttempts(1))
	require.ErrorIs(t, e.ix.SyncTx(e.ctx, e.db), indexer.ErrNotInTransaction)
	require.ErrorIs(t, e.ix.SyncTx(e.ctx, nil), indexer.ErrNotInTransaction)
	require.Contains(t, e.ix.SyncTx(e.ctx, e.db.WithContext(e.ctx)).Error(), "use Sync")

	e.create(e.db, 1, "first title", "words")
	e.vecs[1] = stVec(1)
	_, err := e.ix.Drain(e.ctx)
	require.NoError(t, err)
	before := e.checkpoint(e.sql)
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Model(&stPost{ID: 1}).Update("title", "second title").Error)
		e.create(tx, 2, "new row", "words")
		// An event of a table that is not registered fails the batch after
		// st_posts was applied (tables apply in name order).
		require.NoError(t, outbox.Append(e.ctx, tx.Statement.ConnPool, []outbox.Event{{Table: "zz_unknown", Key: int64(1), Op: outbox.OpInsert, Vec: []byte{}}}))
		err := e.ix.SyncTx(e.ctx, tx)
		require.ErrorIs(t, err, indexer.ErrNotRegistered)
		require.Contains(t, err.Error(), "zz_unknown")
		// Nothing of the failed SyncTx remains in tx; tx's own writes do.
		require.Equal(t, before, e.checkpoint(tx.Statement.ConnPool))
		var n int
		require.NoError(t, tx.Raw(`SELECT count(*) FROM st_posts_vec WHERE rowid = 2`).Scan(&n).Error)
		require.Zero(t, n)
		require.NoError(t, tx.Raw(`SELECT count(*) FROM st_posts WHERE id = 2`).Scan(&n).Error)
		require.Equal(t, 1, n)
		return nil // commit anyway
	}))
	e.vecs[2] = stVec(2)
	// The worker parks the bad event (one attempt) and applies the rest.
	_, err = e.ix.Drain(e.ctx)
	require.NoError(t, err)
	dead, err := e.ix.DeadLetters(e.ctx)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, "zz_unknown", dead[0].Table)
	e.exact()
	hits, err := ftssink.Search[stPost](e.ctx, e.db, ftssink.Term("second"))
	require.NoError(t, err)
	require.Equal(t, []uint{1}, hitIDs(hits))

	require.NoError(t, e.ix.Close())
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
		require.ErrorIs(t, e.ix.SyncTx(e.ctx, tx), indexer.ErrClosed)
		return nil
	}))
}

// With gorm's PrepareStmt the transaction's connection is gorm's prepared
// statement wrapper around the *sql.Tx; SyncTx works through it alike, and
// so does a transaction opened with db.Begin.
func TestSyncTxPreparedStatementsAndBegin(t *testing.T) {
	t.Parallel()
	e := newSTEnvOn(t, testdb.New(t, &gorm.Config{PrepareStmt: true}))
	tx := e.db.Begin()
	require.NoError(t, tx.Error)
	e.create(tx, 1, "prepared statements", "words")
	require.NoError(t, e.ix.SyncTx(e.ctx, tx))
	hits, err := ftssink.Search[stPost](e.ctx, tx, ftssink.Term("prepared"))
	require.NoError(t, err)
	require.Equal(t, []uint{1}, hitIDs(hits))
	require.NoError(t, tx.Commit().Error)
	e.vecs[1] = stVec(1)
	e.exact()
	n, err := e.ix.Drain(e.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}
