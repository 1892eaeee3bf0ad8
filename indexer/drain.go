package indexer

import (
	"context"
	"errors"

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
func (ix *Indexer) Drain(ctx context.Context) (int, error) {
	if err := ix.checkOpen(); err != nil {
		return 0, err
	}
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
// no other indexer holds the lease, Sync applies the events itself.
func (ix *Indexer) Sync(ctx context.Context) error {
	if err := ix.checkOpen(); err != nil {
		return err
	}
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
		n, final, err := ix.applyPending(ctx, target, all)
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
		case final:
			return applied, nil
		}
	}
}

var errNotHolder = errors.New("indexer: another indexer holds the lease")

// applyPending applies batches while this indexer holds the lease, until
// the checkpoint reaches target (or, with all, the log head). final reports
// that it got there.
func (ix *Indexer) applyPending(ctx context.Context, target int64, all bool) (applied int, final bool, err error) {
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
		if res.final || (!all && res.checkpoint >= target) {
			return applied, true, nil
		}
	}
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
