package indexer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// Drain applies everything pending, in the caller's goroutine, and returns
// the number of events it consumed (events applied, including later events
// of the same keys absorbed into one write; parked events are not counted).
// It then compacts the log (see WithRetention).
//
// If another indexer holds the lease, Drain does not compete with it: it
// waits, like Sync, until everything that was pending when it was called
// has been applied (taking the lease over if the holder dies), and reports
// only what it applied itself.
//
// Unless Run is running on this Indexer (a Worker), Drain releases the
// lease it took before it returns, so that another indexer (the next
// indexer.New + Drain in the same program, the binary) can apply at once
// rather than after the lease TTL; Close is not needed for that.
//
// With an embedder, Drain also embeds every queued derived vector (see
// WithEmbedder) and applies them, so that when it returns every row's
// vector is the one of its text; it fails with ErrNoEmbedder, before doing
// anything, when the registry holds a derived vector and the Indexer has no
// embedder. A failure of the embedding service (after the retries of the
// embedder) is returned: the keys stay queued.
func (ix *Indexer) Drain(ctx context.Context) (int, error) {
	if err := ix.checkOpen(); err != nil {
		return 0, err
	}
	if err := ix.checkEmbedder(ctx); err != nil {
		return 0, err
	}
	defer ix.releaseOneShot(ctx)
	defer ix.ckpt.wait()
	target, err := ix.head(ctx)
	if err != nil {
		return 0, err
	}
	n, err := ix.syncTo(ctx, target, true)
	if err != nil {
		return n, err
	}
	if _, err := ix.compactIfDue(ctx, true); err != nil {
		return n, err
	}
	return n, nil
}

// Sync returns once every event committed before the call has been applied,
// by this indexer or any other one on the database (read-your-writes). When
// no other indexer holds the lease, Sync applies the events itself; like
// Drain, it then releases the lease unless Run is running on this Indexer.
func (ix *Indexer) Sync(ctx context.Context) error {
	if err := ix.checkOpen(); err != nil {
		return err
	}
	defer ix.releaseOneShot(ctx)
	target, err := ix.head(ctx)
	if err != nil {
		return err
	}
	ix.Notify()
	_, err = ix.syncTo(ctx, target, false)
	return err
}

func (ix *Indexer) head(ctx context.Context) (int64, error) {
	var h int64
	err := ix.retry(ctx, func(ctx context.Context) error {
		var err error
		h, err = outbox.Head(ctx, ix.db)
		return err
	})
	return h, err
}

func (ix *Indexer) checkpoint(ctx context.Context) (int64, error) {
	var cp int64
	err := ix.retry(ctx, func(ctx context.Context) error {
		var err error
		cp, err = outbox.Checkpoint(ctx, ix.db, outbox.MainCheckpoint)
		return err
	})
	return cp, err
}

// syncTo waits until the checkpoint reaches target, applying batches itself
// whenever it holds (or can take) the lease. With all, it applies until the
// log is empty rather than only up to target.
func (ix *Indexer) syncTo(ctx context.Context, target int64, all bool) (int, error) {
	applied := 0
	for {
		cp, err := ix.checkpoint(ctx)
		if err != nil {
			return applied, err
		}
		if cp >= target && !all {
			return applied, nil
		}
		n, final, err := ix.applyPending(ctx, target, all, false)
		applied += n
		switch {
		case errors.Is(err, errNotHolder):
			if cp >= target {
				return applied, nil
			}
			if err := sleep(ctx, ix.cfg.pollInterval); err != nil {
				return applied, err
			}
		case errors.Is(err, outbox.ErrLeaseLost):
			// Another indexer took over; wait for it like any other holder.
		case err != nil:
			return applied, err
		case final && all && ix.embed != nil:
			// Caught up: embed what is queued (outside applyMu and any
			// transaction), then apply the vectors.
			m, err := ix.embedStep(ctx)
			if err != nil {
				return applied, err
			}
			if m == 0 {
				return applied, nil
			}
		case final:
			return applied, nil
		}
	}
}

var errNotHolder = errors.New("indexer: another indexer holds the lease")

// applyPending applies batches while this indexer holds the lease, until
// the checkpoint reaches target (or, with all, the log head). final reports
// that it got there. background (Run) also merges live sidecars that have
// merge work left when there is nothing else to do; a caller that waits
// (Drain) leaves that to the worker, and merges only what fell behind.
func (ix *Indexer) applyPending(ctx context.Context, target int64, all, background bool) (applied int, final bool, err error) {
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return applied, false, err
		}
		ok, err := ix.ensureLease(ctx)
		if err != nil {
			return applied, false, err
		}
		if !ok {
			return applied, false, errNotHolder
		}
		var res batchResult
		err = ix.retry(ctx, func(ctx context.Context) error {
			var err error
			res, err = ix.step(ctx)
			return err
		})
		if err != nil {
			// step's result describes the batch it tried; the transaction
			// was rolled back, so none of its events count as applied.
			return applied, false, err
		}
		applied += res.events
		if res.final && all {
			// Caught up: queue the next rows of a pending backfill, if any,
			// and go on applying them.
			var queued int64
			err = ix.retry(ctx, func(ctx context.Context) error {
				var err error
				queued, err = ix.backfillStep(ctx)
				return err
			})
			if err != nil {
				return applied, false, err
			}
			if queued > 0 {
				continue
			}
			// Then one step of a pending online rebuild, if any, after a
			// merge step of a live sidecar whose merges fell behind: the
			// caller comes back for the next (Run and Drain loop while
			// the result is not final), so that other users of applyMu
			// get it between steps. With neither, in the background, a
			// merge step of a live sidecar that has merge work left
			// (merge.go).
			steps := []func(context.Context) (bool, error){
				func(ctx context.Context) (bool, error) { return ix.mergeStep(ctx, true) },
				func(ctx context.Context) (bool, error) { return ix.rebuildStep(ctx, ix.online.foreground > 0) },
			}
			if background {
				steps = append(steps, func(ctx context.Context) (bool, error) { return ix.mergeStep(ctx, false) })
			}
			for _, step := range steps {
				did, err := step(ctx)
				if err != nil {
					return applied, false, err
				}
				if did {
					return applied, false, nil
				}
			}
		}
		if res.final || (!all && res.checkpoint >= target) {
			return applied, true, nil
		}
		// A backlog: merge a live sidecar first if its merges fell behind.
		if _, err := ix.mergeStep(ctx, true); err != nil {
			return applied, false, err
		}
		// More is pending: let a waiting writer in first (see yield),
		// without applyMu, which SyncTx waits on.
		ix.applyMu.Unlock()
		err = ix.yield(ctx)
		ix.applyMu.Lock()
		if err != nil {
			return applied, false, err
		}
	}
}

// restoreTriggers re-creates the capture triggers of registered tables that
// lost them: a migration done outside gorm (or outside the plugin's
// migrator) that recreated the table drops them, and writes are not
// captured until they are back. What changed meanwhile is not in the log:
// the error log says to rebuild the table.
func (ix *Indexer) restoreTriggers(ctx context.Context, tx *sql.Tx) error {
	restored, err := outbox.RestoreTriggers(ctx, tx)
	for _, t := range restored {
		ix.log.Error("capture triggers were missing and are re-created; writes made without them are not indexed: rebuild the table",
			"table", t, "fix", "indexer rebuild --table "+t)
	}
	return err
}

// backfillBatch bounds the rows one backfill step queues: a short write
// transaction (an INSERT … SELECT of that many rows).
const backfillBatch = 1000

// backfillStep queues the next rows of the first table with a pending
// backfill (see outbox.BackfillStep) in one short transaction, and returns
// how many events it appended; 0 when no backfill is pending. It runs each
// time the indexer catches up, so it first checks with plain reads and
// takes the write lock only when a backfill is queued or triggers are
// missing.
func (ix *Indexer) backfillStep(ctx context.Context) (int64, error) {
	// Triggers go missing only with a change of the schema: look for them
	// when the schema version moved since the last look that found none
	// (a profile of the application's process during a 1M-row rebuild had
	// 4% of its CPU in this look, done after nearly every batch).
	var version int64
	if err := ix.db.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("indexer: read schema version: %w", err)
	}
	var missing []string
	if version != ix.triggersSeen {
		var err error
		if missing, err = outbox.MissingTriggers(ctx, ix.db); err != nil {
			return 0, err
		}
		if len(missing) == 0 {
			ix.triggersSeen = version
		}
	}
	pending, err := outbox.BackfillPending(ctx, ix.db)
	if err != nil || (!pending && len(missing) == 0) {
		return 0, err
	}
	var queued int64
	err = ix.inTx(ctx, func(tx *sql.Tx) error {
		if err := ix.restoreTriggers(ctx, tx); err != nil {
			return err
		}
		tables, err := outbox.Backfills(ctx, tx)
		if err != nil || len(tables) == 0 {
			return err
		}
		for _, name := range tables {
			spec, err := outbox.LoadSpec(ctx, tx, name)
			if errors.Is(err, outbox.ErrNotRegistered) {
				if _, err := tx.ExecContext(ctx, `DELETE FROM oi_backfill WHERE tbl = ?`, name); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			n, done, err := outbox.BackfillStep(ctx, tx, spec, backfillBatch)
			if err != nil {
				return err
			}
			if done {
				ix.log.Info("backfill finished", "table", name)
				continue
			}
			queued = n
			return nil
		}
		return nil
	})
	return queued, err
}

// compactIfDue compacts the log if retention allows and the interval has
// passed (or force).
func (ix *Indexer) compactIfDue(ctx context.Context, force bool) (int, error) {
	if ix.cfg.retention < 0 {
		return 0, nil
	}
	ix.applyMu.Lock()
	due := force || ix.cfg.now().Sub(ix.lastComp) >= ix.cfg.compactInterval
	ix.applyMu.Unlock()
	if !due {
		return 0, nil
	}
	return ix.Compact(ctx)
}
