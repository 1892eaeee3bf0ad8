package indexer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

// leaseRow reads the lease row.
func (e *env) leaseRow() (holder string, token int64, live bool) {
	e.t.Helper()
	var exp int64
	require.NoError(e.t, e.sql.QueryRowContext(e.ctx, `SELECT holder, token, expires_at FROM oi_lease WHERE name = 'main'`).Scan(&holder, &token, &exp))
	return holder, token, exp > time.Now().UnixNano()
}

// One-shot calls on an Indexer that is not running as a worker release the
// lease they took, so that the next indexer.New + Drain in the same program
// applies at once instead of after the lease TTL (15 s by default, used
// here): each call below must return well within 3 s.
func TestOneShotCallsReleaseTheLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	quick := func() (context.Context, context.CancelFunc) { return context.WithTimeout(e.ctx, 3*time.Second) }
	oneShot := func(holder string) *indexer.Indexer {
		// No Close: the README's `ix, _ := indexer.New(db); ix.Drain(ctx)`.
		ix, err := indexer.New(e.db, indexer.WithHolder(holder), indexer.WithBackoff(fastBackoff))
		require.NoError(t, err)
		return ix
	}

	e.seed(4)
	first := oneShot("first")
	ctx, cancel := quick()
	n, err := first.Drain(ctx)
	cancel()
	require.NoError(t, err)
	require.Equal(t, 6, n)
	require.False(t, first.LeaseHeld())
	holder, token, live := e.leaseRow()
	require.Equal(t, "first", holder)
	require.EqualValues(t, 1, token)
	require.False(t, live, "Drain released the lease it took")

	e.updateDoc(1, map[string]any{"title": "second drain"}, true, vec(41))
	ctx, cancel = quick()
	n, err = oneShot("second").Drain(ctx)
	cancel()
	require.NoError(t, err, "the second Drain must not wait for the first one's lease")
	require.Equal(t, 1, n)
	e.check()

	// Sync too.
	e.updateDoc(2, map[string]any{"title": "by sync"}, false, nil)
	s := oneShot("sync")
	ctx, cancel = quick()
	require.NoError(t, s.Sync(ctx))
	cancel()
	require.False(t, s.LeaseHeld())
	_, _, live = e.leaseRow()
	require.False(t, live, "Sync released the lease it took")
	e.updateDoc(3, map[string]any{"title": "after sync"}, false, nil)
	ctx, cancel = quick()
	n, err = oneShot("third").Drain(ctx)
	cancel()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	e.check()

	// The same Indexer takes the lease again on its next call.
	e.updateDoc(4, map[string]any{"title": "again"}, false, nil)
	ctx, cancel = quick()
	n, err = first.Drain(ctx)
	cancel()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	holder, token, live = e.leaseRow()
	require.Equal(t, "first", holder)
	require.False(t, live)
	require.Greater(t, token, int64(1), "tokens only grow")

	// Rebuild and Replay never take it.
	require.NoError(t, first.Rebuild(e.ctx))
	require.NoError(t, first.Replay(e.ctx, 1))
	require.False(t, first.LeaseHeld())
	_, _, live = e.leaseRow()
	require.False(t, live)
	e.check()

	// A failed Drain (cancelled) releases too.
	e.updateDoc(1, map[string]any{"title": "cancelled"}, false, nil)
	cctx, ccancel := context.WithCancel(e.ctx)
	ccancel()
	_, err = first.Drain(cctx)
	require.ErrorIs(t, err, context.Canceled)
	_, _, live = e.leaseRow()
	require.False(t, live)
	ctx, cancel = quick()
	n, err = oneShot("fourth").Drain(ctx)
	cancel()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	e.check()
}

// A running worker keeps its lease across Drain and Sync calls on its
// Indexer, and one-shot indexers wait for it rather than compete. When the
// worker's lease is taken over while it is frozen, the fencing token keeps
// it from applying anything; when its Run stops, it releases the lease and
// another indexer applies at once.
func TestWorkerKeepsLeaseAndIsFenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	var aEvents atomic.Int64
	var mu sync.Mutex
	var aLease []bool
	// a wakes only on Notify (poll: an hour), so that it stays "frozen"
	// until the test wakes it.
	a := e.indexer(indexer.WithHolder("a"), indexer.WithLease("main", time.Hour), indexer.WithPollInterval(time.Hour),
		indexer.WithObserver(indexer.Observer{
			Batch: func(s indexer.BatchStats) { aEvents.Add(int64(s.Events)) },
			Lease: func(held bool) { mu.Lock(); aLease = append(aLease, held); mu.Unlock() },
		}))
	runA, stopA := context.WithCancel(e.ctx)
	defer stopA()
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(runA) }()
	require.Eventually(t, a.LeaseHeld, 5*time.Second, time.Millisecond)

	e.seed(4)
	a.Notify()
	b := e.indexer(indexer.WithHolder("b"), indexer.WithLease("main", time.Hour))
	require.NoError(t, b.Sync(e.ctx)) // applied by a
	require.False(t, b.LeaseHeld())
	e.updateDoc(1, map[string]any{"title": "by a"}, false, nil)
	a.Notify()
	n, err := b.Drain(e.ctx) // waits for a
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoError(t, a.Sync(e.ctx))
	_, err = a.Drain(e.ctx)
	require.NoError(t, err)
	require.True(t, a.LeaseHeld(), "a running worker keeps its lease")
	holder, token, live := e.leaseRow()
	require.Equal(t, "a", holder)
	require.EqualValues(t, 1, token)
	require.True(t, live)
	e.check()
	require.Eventually(t, func() bool { return aEvents.Load() == 7 }, 5*time.Second, time.Millisecond) // the observer runs just after the commit
	applied := aEvents.Load()

	// a freezes and another holder takes the lease over (what an indexer
	// does once a's lease expired; written directly, so that a's wake-ups
	// cannot renew the lease in between).
	e.exec(`UPDATE oi_lease SET holder = 'x', token = token + 1, expires_at = ?`, time.Now().Add(time.Hour).UnixNano())
	cp := e.count(`SELECT position FROM oi_checkpoint WHERE name = 'main'`)
	// a wakes up believing it holds the lease: its apply is fenced off.
	e.updateDoc(2, map[string]any{"title": "not by a"}, false, nil)
	a.Notify()
	require.Eventually(t, func() bool { return !a.LeaseHeld() }, 5*time.Second, time.Millisecond)
	require.Equal(t, cp, e.count(`SELECT position FROM oi_checkpoint WHERE name = 'main'`), "a applied nothing after losing the lease")
	require.Equal(t, applied, aEvents.Load())
	holder, token, live = e.leaseRow()
	require.Equal(t, "x", holder)
	require.EqualValues(t, 2, token)
	require.True(t, live)

	// x's lease expires: a takes over (a new token) on its next wake.
	e.exec(`UPDATE oi_lease SET expires_at = 0`)
	a.Notify()
	require.Eventually(t, a.LeaseHeld, 5*time.Second, time.Millisecond)
	require.NoError(t, b.Sync(e.ctx))
	require.Eventually(t, func() bool { return aEvents.Load() > applied }, 5*time.Second, time.Millisecond, "a applies again") // the observer runs just after the commit
	holder, token, _ = e.leaseRow()
	require.Equal(t, "a", holder)
	require.EqualValues(t, 3, token)
	e.check()

	// Run releases the lease when it stops: a one-shot Drain applies at
	// once, although a's lease had an hour to live.
	stopA()
	require.NoError(t, <-doneA)
	e.updateDoc(3, map[string]any{"title": "after a"}, false, nil)
	ctx, cancel := context.WithTimeout(e.ctx, 3*time.Second)
	defer cancel()
	n, err = b.Drain(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	e.check()
	mu.Lock()
	require.Equal(t, []bool{true, false, true, false}, aLease)
	mu.Unlock()
}
