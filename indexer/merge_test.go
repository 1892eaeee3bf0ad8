package indexer_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// stFTS returns the FTS5 sink of the SyncTx tests' model, to read its
// structure.
func (e *stEnv) stFTS() *ftssink.Table {
	e.t.Helper()
	spec, err := outbox.LoadSpec(e.ctx, e.sql, "st_posts")
	require.NoError(e.t, err)
	ft, err := ftssink.NewTable(spec)
	require.NoError(e.t, err)
	return ft
}

// Live FTS5 sidecars do not merge by themselves (automerge is off on
// them): the indexer merges them, a slice at the end of each batch and in
// steps of their own, so that no level piles up segments and the index
// ends merged as FTS5's automatic merges would have left it.
func TestLiveSidecarMergedByTheIndexer(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		fullest int
		e       *stEnv
		ft      *ftssink.Table
	)
	// One event a batch: every batch writes a segment of its own.
	e = newSTEnv(t, indexer.WithBatchSize(1), indexer.WithObserver(indexer.Observer{Batch: func(indexer.BatchStats) {
		s, err := ft.Structure(e.ctx, e.sql)
		if err == nil {
			mu.Lock()
			fullest = max(fullest, s.Fullest())
			mu.Unlock()
		}
	}}))
	ft = e.stFTS()
	var automerge int
	require.NoError(t, e.sql.QueryRowContext(e.ctx, `SELECT v FROM st_posts_fts_config WHERE k = 'automerge'`).Scan(&automerge))
	require.Zero(t, automerge, "FTS5's automatic merges are off on a live sidecar")

	const n = 120
	for i := 1; i <= n; i++ {
		e.create(e.db, i, fmt.Sprintf("title %d", i), fmt.Sprintf("body word%d common", i))
		e.vecs[int64(i)] = stVec(i)
	}
	applied, err := e.ix.Drain(e.ctx)
	require.NoError(t, err)
	require.Equal(t, n, applied)

	s, err := ft.Structure(e.ctx, e.sql)
	require.NoError(t, err)
	require.False(t, s.Mergeable(), "merged down after the drain: %+v", s.Levels)
	require.Greater(t, len(s.Levels), 1, "segments were merged into higher levels: %+v", s.Levels)
	mu.Lock()
	require.Less(t, fullest, 16, "no level piled up segments during the drain")
	mu.Unlock()
	e.exact()
	var hits int
	require.NoError(t, e.sql.QueryRowContext(e.ctx, `SELECT count(*) FROM st_posts_fts WHERE st_posts_fts MATCH 'common'`).Scan(&hits))
	require.Equal(t, n, hits)
}

// Writes applied in the application's transactions (SyncTx) get no merge
// slice; the indexer merges what they left when it has nothing else to
// do: a level holding many segments first.
func TestLiveSidecarMergedAfterSyncTx(t *testing.T) {
	t.Parallel()
	e := newSTEnv(t)
	ft := e.stFTS()
	const n = 40
	for i := 1; i <= n; i++ {
		require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
			e.create(tx, i, fmt.Sprintf("title %d", i), "body shared")
			return e.ix.SyncTx(e.ctx, tx)
		}))
		e.vecs[int64(i)] = stVec(i)
	}
	s, err := ft.Structure(e.ctx, e.sql)
	require.NoError(t, err)
	require.GreaterOrEqual(t, s.Fullest(), n/2, "each application transaction wrote a segment, none merged: %+v", s.Levels)

	_, err = e.ix.Drain(e.ctx)
	require.NoError(t, err)
	s, err = ft.Structure(e.ctx, e.sql)
	require.NoError(t, err)
	require.False(t, s.Mergeable(), "merged down by the drain: %+v", s.Levels)
	e.exact()
}
