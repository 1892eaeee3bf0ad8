package indexer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

// A foreground online rebuild grows its steps only while no other writer
// shows, and goes back to the configured step at the first sign of one.
func TestRebuildStepAdaptsToOtherWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := testdb.Path(t)
	db := testdb.Open(t, path)
	ix, err := New(db, WithRebuildStep(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	sqlDB, err := db.DB()
	require.NoError(t, err)
	_, err = sqlDB.Exec(`CREATE TABLE t (x)`)
	require.NoError(t, err)

	// Without a watch connection (a background driver), the step stays.
	ix.adapt(ctx, false)
	require.Equal(t, 20*time.Millisecond, ix.stepBudget())

	watch := &versionWatch{db: sqlDB}
	t.Cleanup(watch.close)
	ix.online.watch, ix.online.step, ix.online.quietSince = watch, 0, time.Time{}
	ix.online.chunk, ix.online.pages, ix.online.scan = 400, 400, 40000

	// Quiet, but not for long enough yet.
	ix.adapt(ctx, false)
	require.Equal(t, 20*time.Millisecond, ix.stepBudget())
	require.False(t, ix.othersCommitted(ctx), "nobody else committed")

	// Quiet for quietAfter: steps grow to 4x (at most maxQuietStep).
	ix.online.quietSince = time.Now().Add(-quietAfter)
	ix.adapt(ctx, false)
	require.Equal(t, 80*time.Millisecond, ix.stepBudget())

	// Another connection commits between two steps: the step about to run
	// sees it, and the configured step is back at once, with the tuned
	// sizes scaled down with it.
	other := testdb.Open(t, path)
	require.NoError(t, other.Exec(`INSERT INTO t VALUES (1)`).Error)
	require.True(t, ix.othersCommitted(ctx), "another connection committed")
	ix.adapt(ctx, true)
	require.Equal(t, 20*time.Millisecond, ix.stepBudget())
	require.Equal(t, 100, ix.online.chunk)
	require.Equal(t, 100, ix.online.pages)
	require.EqualValues(t, 10000, ix.online.scan)
	require.False(t, ix.othersCommitted(ctx), "adapt took the new data_version")

	// A step that waited for the lock counts as a writer too.
	ix.online.quietSince = time.Now().Add(-quietAfter)
	ix.adapt(ctx, false)
	require.Equal(t, 80*time.Millisecond, ix.stepBudget())
	ix.adapt(ctx, true)
	require.Equal(t, 20*time.Millisecond, ix.stepBudget())

	// The growth is capped.
	ix.cfg.rebuildStep = 50 * time.Millisecond
	ix.online.quietSince = time.Now().Add(-quietAfter)
	ix.adapt(ctx, false)
	require.Equal(t, maxQuietStep, ix.stepBudget())
}

// A catch-up batch is sized on the time per event applied: batches whose
// events are all skipped do not grow the next one, which may have to
// apply every event it reads.
func TestBatchEvents(t *testing.T) {
	t.Parallel()
	target := 10 * time.Millisecond
	require.Equal(t, 64, batchEvents(64, 0, target, 1000), "nothing applied yet: unchanged")
	require.Equal(t, 100, batchEvents(64, 100*time.Microsecond, target, 1000), "target / time per event, at most twice the last")
	require.Equal(t, 128, batchEvents(64, time.Microsecond, target, 1000))
	require.Equal(t, 1000, batchEvents(900, time.Microsecond, target, 1000), "at most a batch")
	require.Equal(t, 16, batchEvents(64, time.Second, target, 1000), "at least 16")
}

// A merge step that ran out of work before its budget says nothing of a
// full one: the budget does not grow after it (it once grew to 100,000
// pages on merges of small segments, and the next merge of a large level
// held the write lock for 2.5 s). One that used it up grows toward the
// target, and a slow one shrinks either way.
func TestTuneMerge(t *testing.T) {
	t.Parallel()
	target := 10 * time.Millisecond
	require.Equal(t, 64, tuneMerge(64, 20, time.Millisecond, target), "finished early: unchanged")
	require.Equal(t, 128, tuneMerge(64, 64, time.Millisecond, target), "used up and fast: doubles")
	require.Equal(t, 128, tuneMerge(64, 200, time.Millisecond, target), "past the budget (a long term): as used up")
	require.Less(t, tuneMerge(64, 20, 40*time.Millisecond, target), 64, "finished early but slow: shrinks")
	require.Less(t, tuneMerge(64, 64, 40*time.Millisecond, target), 64, "used up and slow: shrinks")
	require.Equal(t, 4, tuneMerge(4, 4, time.Second, target), "never below 4 pages")
}

// The worker's batches shrink when their time per event says a full one
// would hold the write lock past four rebuild steps, and grow back, at
// most doubling, to WithBatchSize.
func TestBatchLimit(t *testing.T) {
	t.Parallel()
	ix := &Indexer{cfg: &config{batchSize: 1000, rebuildStep: 20 * time.Millisecond}}
	require.Equal(t, 1000, ix.batchLimit(), "the configured size first")
	ix.sizeBatches(1000, 1000, 2*time.Second) // 2 ms an event: 40 fit in 80 ms
	require.Equal(t, 40, ix.batchLimit())
	ix.sizeBatches(40, 40, 400*time.Millisecond) // 10 ms an event
	require.Equal(t, 16, ix.batchLimit(), "at least 16")
	ix.sizeBatches(16, 16, 16*100*time.Microsecond) // 100 µs an event: 800 fit
	require.Equal(t, 32, ix.batchLimit(), "at most twice the last")
	for range 10 {
		ix.sizeBatches(ix.batchLimit(), ix.batchLimit(), time.Duration(ix.batchLimit())*time.Microsecond)
	}
	require.Equal(t, 1000, ix.batchLimit(), "fast events: back to the configured size")
	ix.sizeBatches(1000, 0, time.Second)
	require.Equal(t, 1000, ix.batchLimit(), "an empty batch teaches nothing")
}

// A slice's budget is cut to half its small merge's input when a large
// level could be merged next in the same 'merge' call: one with a merge in
// progress, or one segment short of 'usermerge'.
func TestMergeBudget(t *testing.T) {
	t.Parallel()
	const large = 100
	small := ftssink.Level{Segments: 4, Pages: 40}
	for name, c := range map[string]struct {
		levels []ftssink.Level
		in     int
		want   int
	}{
		"no large level":              {[]ftssink.Level{small, {Segments: 3, Pages: 90}}, 40, 64},
		"large level far from full":   {[]ftssink.Level{small, {Segments: 2, Pages: 500}}, 40, 64},
		"large level a segment short": {[]ftssink.Level{small, {Segments: 3, Pages: 500}}, 40, 20},
		"large merge in progress":     {[]ftssink.Level{small, {Segments: 1, Merging: 1, Pages: 500, MergingPages: 500}}, 40, 20},
		"tiny input":                  {[]ftssink.Level{{Segments: 4, Pages: 1}, {Segments: 3, Pages: 500}}, 1, 1},
		"the large merge itself":      {[]ftssink.Level{{Segments: 4, Pages: 500}}, 500, 64},
	} {
		require.Equal(t, c.want, mergeBudget(ftssink.Structure{Levels: c.levels}, c.in, 64, large), name)
	}
}

// liftFails is a sink whose index's lift fails with err.
type liftFails struct {
	outbox.Sink
	err error
}

func (l liftFails) LiftLevels(context.Context, outbox.DB, int) error { return l.err }

// An FTS5 index whose structure record this package cannot read (a
// future FTS5) is left unlifted, with a warning: the lift only spares
// merges, and the rebuild goes on. Any other failure fails it.
func TestLiftLevelsUnreadable(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	ix, err := New(testdb.Open(t, testdb.Path(t)), WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	spec := &outbox.Spec{Source: "docs"}
	unreadable := &table{spec: spec, sinks: []outbox.Sink{liftFails{err: fmt.Errorf("ftssink: docs_fts: %w", ftssink.ErrStructure)}}}
	require.NoError(t, ix.liftLevels(t.Context(), nil, unreadable))
	require.Contains(t, logged.String(), "FTS5 index not lifted")
	require.Contains(t, logged.String(), "table=docs")

	broken := errors.New("disk I/O error")
	failing := &table{spec: spec, sinks: []outbox.Sink{liftFails{err: broken}}}
	require.ErrorIs(t, ix.liftLevels(t.Context(), nil, failing), broken)
}

// A move step's copying budget follows the lock holds toward the step's
// budget: down when the commit doubled the copy, up when the hold was
// short, never below minMoveWork nor above the step.
func TestTuneWork(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	// 5 ms of copying held the lock 30 ms for a 20 ms step: smaller.
	next := tuneWork(5*ms, 30*ms, 20*ms)
	require.Less(t, next, 5*ms)
	require.GreaterOrEqual(t, next, minMoveWork)
	// Repeated, it settles at the floor when every hold is too long.
	w := 5 * ms
	for range 20 {
		w = tuneWork(w, 30*ms, 20*ms)
	}
	require.Equal(t, minMoveWork, w)
	// Short holds: it grows, at most twice at once, at most to the step.
	require.Equal(t, 8*ms, tuneWork(4*ms, 2*ms, 20*ms))
	require.Equal(t, 20*ms, tuneWork(15*ms, 10*ms, 20*ms))
	// A step under the floor still copies minMoveWork.
	require.Equal(t, minMoveWork, tuneWork(minMoveWork, 10*ms, ms))
	// Nothing measured: unchanged.
	require.Equal(t, 7*ms, tuneWork(7*ms, 0, 20*ms))
}
