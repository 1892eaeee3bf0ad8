package indexer_test

import (
	"context"
	"fmt"
	"sync"
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

// workerPost is the model of the worker tests.
type workerPost struct {
	ID        uint
	Title     string            `fts5:"tokenize=porter+unicode61"`
	Embedding vecsink.Embedding `vec:"dim=4;metric=l2"`
}

func workerVec(i int) []float32 { return []float32{float32(i), float32(i % 7), 1, float32(i % 3)} }

// workerDB opens the database at path as an application would: capture
// plugin installed with indexer.Wake as its notify hook, model migrated.
func workerDB(t *testing.T, path string) *gorm.DB {
	t.Helper()
	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New(gormplugin.WithNotify(indexer.Wake))))
	require.NoError(t, gormplugin.Migrate(db, &workerPost{}))
	return db
}

func workerPosts(from, n int) []workerPost {
	out := make([]workerPost, 0, n)
	for i := from; i < from+n; i++ {
		out = append(out, workerPost{Title: fmt.Sprintf("post number w%d", i), Embedding: workerVec(i)})
	}
	return out
}

// vecCount returns the entries of the vec0 sidecar.
func vecCount(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Raw("SELECT count(*) FROM worker_posts_vec").Scan(&n).Error)
	return n
}

// With a poll interval of an hour, only the plugin's notify hook can make
// the worker apply a commit: every round below waits for it.
func TestWorkerWokenByPluginAfterCommit(t *testing.T) {
	t.Parallel()
	db := workerDB(t, testdb.Path(t))
	applied := make(chan int64, 64)
	w, err := indexer.Start(t.Context(), db,
		indexer.WithPollInterval(time.Hour),
		indexer.WithObserver(indexer.Observer{Batch: func(b indexer.BatchStats) { applied <- b.Checkpoint }}),
	)
	require.NoError(t, err)
	defer w.Close()

	for round := 1; round <= 5; round++ {
		p := workerPost{Title: fmt.Sprintf("round r%d", round), Embedding: workerVec(round)}
		require.NoError(t, db.Create(&p).Error)
		for cp := int64(0); cp < int64(round); {
			select {
			case cp = <-applied:
			case <-t.Context().Done():
				t.Fatalf("round %d: the worker was not woken", round)
			}
		}
		hits, err := ftssink.Search[workerPost](t.Context(), db, ftssink.Term(fmt.Sprintf("r%d", round)))
		require.NoError(t, err)
		require.Len(t, hits, 1)
		require.Equal(t, p.ID, hits[0].Model.ID)
		res, err := vecsink.KNN[workerPost](t.Context(), db, workerVec(round), 1)
		require.NoError(t, err)
		require.Equal(t, p.ID, res[0].Model.ID)
	}
	require.NoError(t, w.Close())
	require.NoError(t, w.Err())
}

// Close waits for the batch in flight: afterwards the checkpoint and the
// sidecars agree, and the lease is free for another indexer at once.
func TestWorkerCloseWaitsForBatchAndReleasesLease(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := workerDB(t, path)
	require.NoError(t, db.CreateInBatches(workerPosts(1, 2000), 500).Error) // one event per row

	first := make(chan struct{})
	var once sync.Once
	w, err := indexer.Start(t.Context(), db,
		indexer.WithBatchSize(10),
		indexer.WithObserver(indexer.Observer{Batch: func(indexer.BatchStats) { once.Do(func() { close(first) }) }}),
	)
	require.NoError(t, err)
	<-first
	require.NoError(t, w.Close())
	select {
	case <-w.Done():
	default:
		t.Fatal("Done is open after Close")
	}
	require.NoError(t, w.Err())
	require.NoError(t, w.Close(), "Close is idempotent")
	_, err = w.Indexer().Status(t.Context())
	require.ErrorIs(t, err, indexer.ErrClosed)

	sqlDB, err := db.DB()
	require.NoError(t, err)
	cp, err := outbox.Checkpoint(t.Context(), sqlDB, outbox.MainCheckpoint)
	require.NoError(t, err)
	require.Positive(t, cp)
	var upto int64
	require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM oi_events WHERE id <= ?`, cp).Scan(&upto))
	require.Equal(t, upto, vecCount(t, db), "every event up to the checkpoint is applied, none after")
	l, ok, err := outbox.ReadLease(t.Context(), sqlDB, indexer.DefaultLeaseName)
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, l.ExpiresAt.After(time.Now()), "the lease was released")

	// Another indexer takes over without waiting for an expiry and finishes.
	ix, err := indexer.New(db)
	require.NoError(t, err)
	defer ix.Close()
	n, err := ix.Drain(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, 2000-upto, n)
	require.EqualValues(t, 2000, vecCount(t, db))
}

// Two workers on one database file (as in two application processes) share
// it through the lease: one applies at a time, both see every write, and
// when the holder closes the other takes over.
func TestWorkersCoexistThroughLease(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db1, db2 := workerDB(t, path), workerDB(t, path)
	w1, err := indexer.Start(t.Context(), db1, indexer.WithPollInterval(5*time.Millisecond))
	require.NoError(t, err)
	defer w1.Close()
	w2, err := indexer.Start(t.Context(), db2, indexer.WithPollInterval(5*time.Millisecond))
	require.NoError(t, err)
	defer w2.Close()

	require.NoError(t, db1.CreateInBatches(workerPosts(1, 100), 50).Error)
	require.NoError(t, db2.CreateInBatches(workerPosts(101, 100), 50).Error)
	require.NoError(t, w1.Sync(t.Context()))
	require.NoError(t, w2.Sync(t.Context()))
	require.EqualValues(t, 200, vecCount(t, db1))
	h1, h2 := w1.Indexer().LeaseHeld(), w2.Indexer().LeaseHeld()
	require.False(t, h1 && h2, "never two appliers")

	// Close whichever holds the lease (or w1); the other applies what follows.
	closing, other, otherDB := w1, w2, db2
	if h2 {
		closing, other, otherDB = w2, w1, db1
	}
	require.NoError(t, closing.Close())
	require.NoError(t, otherDB.CreateInBatches(workerPosts(201, 50), 50).Error)
	require.NoError(t, other.Sync(t.Context()))
	require.EqualValues(t, 250, vecCount(t, otherDB))
	// The other worker's Run loop holds the lease once it has polled (Sync
	// may have applied the rows under it, or waited for Run to).
	require.Eventually(t, other.Indexer().LeaseHeld, 5*time.Second, 5*time.Millisecond)
}

func TestWorkerStopsWithItsContext(t *testing.T) {
	t.Parallel()
	db := workerDB(t, testdb.Path(t))
	ctx, cancel := context.WithCancel(t.Context())
	w, err := indexer.Start(ctx, db)
	require.NoError(t, err)
	require.NoError(t, db.Create(&workerPost{Title: "before stop", Embedding: workerVec(1)}).Error)
	require.NoError(t, w.Sync(t.Context()))
	cancel()
	<-w.Done()
	require.NoError(t, w.Err())
	require.NoError(t, w.Close())
	indexer.Wake() // no running worker: a no-op
}

func TestStartRejectsBadOptions(t *testing.T) {
	t.Parallel()
	db := workerDB(t, testdb.Path(t))
	_, err := indexer.Start(t.Context(), db, indexer.WithBatchSize(0))
	require.ErrorContains(t, err, "batch size 0")
	_, err = indexer.Start(t.Context(), nil)
	require.Error(t, err)
}
