package indexer

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Live FTS5 sidecars do not merge by themselves: ftssink turns FTS5's
// automatic merges off on them. FTS5 would merge inside the commit of the
// write that crosses its threshold, for as long as the merge takes, while
// every other writer of the file waits: in a profile of the application's
// process during a 1M-row rebuild, those merges were 23% of its CPU, all
// inside the worker's commits, and commits of one event held the write
// lock for up to 0.9 s. The indexer merges the live sidecars itself, in
// pieces sized to a time:
//
//   - each batch that wrote a sidecar ends with a slice of merge work
//     (mergeSlice), in the batch's transaction, like FTS5's automatic
//     merges but bounded;
//   - when a level holds mergeBehind segments (the slices fell behind a
//     backlog), merge steps of their own (mergeStepTime each, pausing
//     between them) go before the next batch or rebuild step;
//   - when the worker (Run) has nothing else to do, merge steps go on,
//     at most a quarter of the time, until no level holds FTS5's
//     'usermerge' segments, where FTS5's automatic merges would have left
//     the index (Drain does only the first two: its caller waits).
//
// A slice leaves large merges (largeMerge) to the steps: FTS5 checks a
// merge's page budget only between terms, so a piece of a merge holds the
// write lock at least as long as one term's list of documents takes to
// merge, up to 1.4 s for a term common to most documents of a level of
// 250k documents, and a slice runs inside a batch of the worker's.
// Making large merges wait altogether (until the sidecar is quiet, or
// while a rebuild replaces it) was tried and undone: FTS5 picks the level
// holding the most segments, so every merge of the levels below adds a
// segment to the waiting level, and under 200 writes/s of a 1M-row index
// it gathered 1,991 segments in 4 minutes, where FTS5's limit of 2,000
// made every write of the index fail (docs/PERFORMANCE.md).
const (
	mergeSlice  = 3 * time.Millisecond
	mergeBehind = 16
	// largeMerge is the input, in leaf pages, from which a merge is
	// large: 16 MB at a live sidecar's page size (about 10,000 documents
	// of the benchmark's model), 64 MB at the page size a rebuild fills
	// with.
	largeMerge = 16 << 10
)

// mergeStepTime is how long a merge step of its own aims to hold the
// write lock: a quarter of an online rebuild's step. The application's
// writes wait for these steps more than for any other (at 100k rows, with
// half a step, more than half of the writes that waited over 10 ms for
// the lock during an online rebuild waited for one), so they are short.
func (ix *Indexer) mergeStepTime() time.Duration { return ix.cfg.rebuildStep / 4 }

// liveMerger is a live sidecar the indexer merges (an FTS5 table).
type liveMerger interface {
	outbox.Merger
	Name() string
	Structure(ctx context.Context, db outbox.DB) (ftssink.Structure, error)
}

var _ liveMerger = (*ftssink.Table)(nil)

// liveMerges is what the indexer knows of the live sidecars' merges. It
// has its own mutex: SyncTx writes sidecars without applyMu.
type liveMerges struct {
	mu     sync.Mutex
	tables map[string]*liveMerge // by sidecar name
}

// liveMerge is the merge state of one live sidecar.
type liveMerge struct {
	m liveMerger
	// slicePages and stepPages are the merge pages of a slice and of a
	// step, tuned to mergeSlice and mergeStepTime.
	slicePages, stepPages int
	// writes counts the batches that wrote the sidecar; seen is writes
	// when its structure was last read showing no merge work. It is dirty
	// while they differ.
	writes, seen uint64
}

// dirtyMerge is a dirty sidecar, its sink and its writes count when it
// was listed.
type dirtyMerge struct {
	st     *liveMerge
	m      liveMerger
	writes uint64
}

// mergers returns the sinks of t the indexer merges.
func mergers(t *table) []liveMerger {
	var out []liveMerger
	for _, s := range t.sinks {
		if m, ok := s.(liveMerger); ok {
			out = append(out, m)
		}
	}
	return out
}

// mark records that the live sidecars of tables were written.
func (lm *liveMerges) mark(tables []*table) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	for _, t := range tables {
		for _, m := range mergers(t) {
			lm.entry(m).writes++
		}
	}
}

// entry returns the state of m's sidecar, created if needed; lm.mu is held.
func (lm *liveMerges) entry(m liveMerger) *liveMerge {
	if lm.tables == nil {
		lm.tables = map[string]*liveMerge{}
	}
	st := lm.tables[m.Name()]
	if st == nil {
		st = &liveMerge{slicePages: 16, stepPages: 64}
		lm.tables[m.Name()] = st
	}
	st.m = m
	return st
}

// mergeBudget returns the page budget of a slice on an index of structure
// s whose next merge has in pages of input, given the tuned budget pages.
// FTS5's 'merge' goes on to the next level's merge while budget is left,
// so a small merge's budget must not carry a slice into a large merge:
// when a large level holds a merge in progress or is a segment short of
// 'usermerge' (the small merge's output could complete it), the budget is
// cut to half the small merge's input, which the slice cannot finish (a
// merge writes about as many leaves as it reads).
func mergeBudget(s ftssink.Structure, in, pages, large int) int {
	if in > large {
		return pages
	}
	for _, l := range s.Levels {
		if l.Pages > large && (l.Merging > 0 || l.Segments >= ftssink.UserMerge-1) {
			return max(1, min(pages, in/2))
		}
	}
	return pages
}

// dirty returns the sidecars written since they were last seen with no
// merge work.
func (lm *liveMerges) dirty() []dirtyMerge {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	var out []dirtyMerge
	for _, st := range lm.tables {
		if st.writes != st.seen {
			out = append(out, dirtyMerge{st, st.m, st.writes})
		}
	}
	return out
}

// settle records that the structure of d's sidecar, read after d was
// listed, showed no merge work (or that the sidecar is gone): it is clean
// unless written since it was listed.
func (lm *liveMerges) settle(d dirtyMerge, gone bool) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if gone {
		if lm.tables[d.m.Name()] == d.st && d.st.writes == d.writes {
			delete(lm.tables, d.m.Name())
		}
		return
	}
	d.st.seen = max(d.st.seen, d.writes)
}

// mergeSliceTx does a slice of merge work on the live sidecars of tables,
// which the batch in tx wrote.
func (ix *Indexer) mergeSliceTx(ctx context.Context, tx outbox.DB, tables []*table) error {
	for _, t := range tables {
		for _, m := range mergers(t) {
			// One row read, where the 'merge' command costs three
			// statements even with nothing to do. It does not see this
			// batch's segment, which FTS5 writes at the commit: a level
			// it completes is merged by the next slice.
			s, err := m.Structure(ctx, tx)
			in := 0
			switch {
			case err == nil:
				var ok bool
				if _, in, ok = s.NextMerge(); !ok || in > ix.cfg.largeMerge {
					continue
				}
			case errors.Is(err, ftssink.ErrStructure):
				// An FTS5 this package cannot read: the slice merges
				// blind (mergeStep warns).
			case transient(err) || ctx.Err() != nil:
				return err
			default:
				// A sidecar an online rebuild is replacing may be gone; the
				// batch stands without the slice.
				ix.log.Debug("merge slice skipped", "table", m.Name(), "err", err)
				continue
			}
			ix.merges.mu.Lock()
			st := ix.merges.entry(m)
			pages := mergeBudget(s, in, st.slicePages, ix.cfg.largeMerge)
			ix.merges.mu.Unlock()
			t0 := time.Now()
			wrote, err := m.Merge(ctx, tx, pages)
			if err != nil {
				if transient(err) || ctx.Err() != nil {
					return err
				}
				ix.log.Debug("merge slice skipped", "table", m.Name(), "err", err)
				continue
			}
			took := time.Since(t0)
			if took > 10*mergeSlice {
				ix.log.Debug("slow merge slice", "table", m.Name(), "pages", pages, "wrote", wrote, "took", took)
			}
			if wrote > 0 {
				ix.merges.mu.Lock()
				st.slicePages = tuneMerge(pages, wrote, took, mergeSlice)
				ix.merges.mu.Unlock()
			}
		}
	}
	return nil
}

// mergeStep does one merge step of its own (a write transaction of about
// mergeStepTime, then a pause) on a live sidecar that needs one: with
// urgent, only one with a level holding mergeBehind segments; otherwise
// any with merge work. It reports whether it merged. The caller holds
// applyMu and the lease.
func (ix *Indexer) mergeStep(ctx context.Context, urgent bool) (bool, error) {
	for _, d := range ix.merges.dirty() {
		st := d.st
		s, err := d.m.Structure(ctx, ix.db)
		if err != nil {
			if transient(err) || ctx.Err() != nil {
				return false, err
			}
			if errors.Is(err, ftssink.ErrStructure) {
				// An FTS5 this package cannot read: the slices still merge.
				ix.log.Warn("merge: cannot read the index's structure; only the batches' merge slices merge it", "table", d.m.Name(), "err", err)
			}
			// Dropped, or replaced by a rebuild's new generation.
			ix.merges.settle(d, true)
			continue
		}
		lvl, in, ok := s.NextMerge()
		if !ok {
			ix.merges.settle(d, false)
			continue
		}
		if urgent && s.Fullest() < mergeBehind {
			continue
		}
		ix.merges.mu.Lock()
		pages := st.stepPages
		ix.merges.mu.Unlock()
		var took time.Duration
		var wrote int64
		err = ix.retry(ctx, func(ctx context.Context) error {
			return ix.inTx(ctx, func(tx *sql.Tx) error {
				t0 := time.Now()
				var err error
				wrote, err = d.m.Merge(ctx, tx, pages)
				took = time.Since(t0)
				return err
			})
		})
		if err != nil {
			if transient(err) || ctx.Err() != nil {
				return false, err
			}
			ix.log.Warn("merge step failed", "table", d.m.Name(), "err", err)
			ix.merges.settle(d, true)
			continue
		}
		ix.merges.mu.Lock()
		if wrote == 0 {
			// Nothing to merge after all (the structure read raced with
			// another merger, or the table's 'usermerge' is not FTS5's
			// default): clean until written again.
			ix.merges.settle(d, false)
			continue
		}
		st.stepPages = tuneMerge(pages, wrote, took, ix.mergeStepTime())
		ix.merges.mu.Unlock()
		ix.log.Debug("merge step", "table", d.m.Name(), "pages", pages, "wrote", wrote, "hold", took, "level", lvl, "input", in, "fullest", s.Fullest(), "levels", len(s.Levels), "urgent", urgent)
		if urgent {
			return true, ix.yield(ctx)
		}
		// Merging that nothing presses for takes at most a quarter of the
		// time, so that the writers of the file, an online rebuild's steps
		// in another process among them, get the lock most of it.
		return true, sleep(ctx, max(3*took, 2*time.Millisecond))
	}
	return false, nil
}
