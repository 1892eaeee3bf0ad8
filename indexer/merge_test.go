package indexer_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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
// steps of their own, so that no level piles up segments, and the worker
// (Run) leaves the index merged as FTS5's automatic merges would have.
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
	require.Greater(t, len(s.Levels), 1, "segments were merged into higher levels: %+v", s.Levels)
	mu.Lock()
	require.Less(t, fullest, 16, "no level piled up segments during the drain")
	mu.Unlock()
	runUntilMerged(t, e, ft)
	e.exact()
	var hits int
	require.NoError(t, e.sql.QueryRowContext(e.ctx, `SELECT count(*) FROM st_posts_fts WHERE st_posts_fts MATCH 'common'`).Scan(&hits))
	require.Equal(t, n, hits)
}

// Writes applied in the application's transactions (SyncTx) get no merge
// slice. A Drain merges a level that piled up 16 segments or more; the
// worker merges the rest when it has nothing else to do.
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
	require.Less(t, s.Fullest(), 16, "the drain merged what fell behind: %+v", s.Levels)
	runUntilMerged(t, e, ft)
	e.exact()
}

// runUntilMerged runs e's worker until the sidecar has no merge work left.
func runUntilMerged(t *testing.T, e *stEnv, ft *ftssink.Table) {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.ix.Run(ctx) }()
	require.Eventually(t, func() bool {
		s, err := ft.Structure(e.ctx, e.sql)
		require.NoError(t, err)
		return !s.Mergeable()
	}, 10*time.Second, 5*time.Millisecond, "the worker merges the sidecar down")
	cancel()
	require.NoError(t, <-done)
}

// SyncTx and the worker of the same Indexer both record what they wrote
// for the merges (run with -race): the worker merges what both wrote.
func TestLiveSidecarMergesWithSyncTxAndWorker(t *testing.T) {
	t.Parallel()
	e := newSTEnv(t)
	ft := e.stFTS()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.ix.Run(ctx) }()
	for i := 1; i <= 60; i++ {
		if i%2 == 0 {
			require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
				e.create(tx, i, fmt.Sprintf("title %d", i), "body shared")
				return e.ix.SyncTx(e.ctx, tx)
			}))
		} else {
			e.create(e.db, i, fmt.Sprintf("title %d", i), "body shared")
		}
		e.vecs[int64(i)] = stVec(i)
	}
	require.Eventually(t, func() bool {
		s, err := ft.Structure(e.ctx, e.sql)
		require.NoError(t, err)
		st, err := e.ix.Status(e.ctx, indexer.WithoutCounts())
		require.NoError(t, err)
		return st.Pending == 0 && !s.Mergeable()
	}, 10*time.Second, 5*time.Millisecond, "the worker applies and merges everything")
	cancel()
	require.NoError(t, <-done)
	e.exact()
}

// mergeLog records the input of each merge step the indexer logs.
type mergeLog struct {
	mu     sync.Mutex
	inputs []int64
}

func (l *mergeLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *mergeLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *mergeLog) WithGroup(string) slog.Handler            { return l }

func (l *mergeLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "merge step" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "input" {
			l.inputs = append(l.inputs, a.Value.Int64())
		}
		return true
	})
	return nil
}

// large returns the number of merge steps with more than pages of input.
func (l *mergeLog) large(pages int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, in := range l.inputs {
		if in > pages {
			n++
		}
	}
	return n
}

// The merge slices in the worker's batches leave a large merge (more
// input than largeMerge, scaled down here) alone: its input does not
// shrink while batches go on (a Drain merges in steps only when a level
// holds 16 segments). The worker's steps do it, and the index is left
// merged and exact.
func TestMergeSlicesLeaveLargeMerges(t *testing.T) {
	t.Parallel()
	const large = 24
	var (
		mu      sync.Mutex
		e       *stEnv
		ft      *ftssink.Table
		watch   bool
		lastLvl = -1
		lastIn  int
		seen    int
	)
	lg := &mergeLog{}
	e = newSTEnv(t, indexer.WithBatchSize(1), indexer.WithLogger(slog.New(lg)),
		indexer.WithObserver(indexer.Observer{Batch: func(indexer.BatchStats) {
			mu.Lock()
			defer mu.Unlock()
			if !watch {
				return
			}
			s, err := ft.Structure(e.ctx, e.sql)
			if err != nil || s.Fullest() >= 16 {
				return
			}
			lvl, in, ok := s.NextMerge()
			if !ok || in <= large {
				return
			}
			if lvl == lastLvl {
				// A slice that worked on it would have consumed input.
				require.GreaterOrEqual(t, in, lastIn, "the large merge of level %d lost input: %+v", lvl, s.Levels)
			}
			lastLvl, lastIn = lvl, in
			seen++
		}}))
	indexer.SetLargeMerge(e.ix, large)
	ft = e.stFTS()
	next := 1
	write := func(n int) {
		for range n {
			var body strings.Builder
			for w := range 30 {
				fmt.Fprintf(&body, "w%d ", (next*31+w)%997)
			}
			e.create(e.db, next, fmt.Sprintf("title %d", next), body.String())
			e.vecs[int64(next)] = stVec(next)
			next++
		}
	}
	largeNext := func() bool {
		s, err := ft.Structure(e.ctx, e.sql)
		require.NoError(t, err)
		_, in, ok := s.NextMerge()
		return ok && in > large
	}

	// Applied one event a batch, the index grows levels until its next
	// merge is large.
	for !largeNext() {
		write(8)
		_, err := e.ix.Drain(e.ctx)
		require.NoError(t, err)
		require.Less(t, next, 3000, "no large merge came up")
	}
	require.Zero(t, lg.large(large))

	// More batches, each with its slice: the large merge keeps its input.
	mu.Lock()
	watch = true
	mu.Unlock()
	write(40)
	_, err := e.ix.Drain(e.ctx)
	require.NoError(t, err)
	mu.Lock()
	watch = false
	require.Positive(t, seen, "the large merge stayed next after some batches")
	mu.Unlock()

	// The worker's steps do it.
	runUntilMerged(t, e, ft)
	require.Positive(t, lg.large(large), "a merge step did the large merge")
	e.exact()
}
