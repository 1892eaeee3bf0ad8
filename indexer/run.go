package indexer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Run applies events until ctx is cancelled or Close is called, then
// releases the lease and returns nil. The batch in flight when it stops is
// rolled back (its transaction is interrupted) or committed, never half
// applied.
//
// Run wakes at once on Notify (the gorm plugin nudges it after a commit in
// the same process), and notices commits made by other connections and
// processes through PRAGMA data_version, polled every poll interval on a
// connection Run keeps for itself (so Run needs a pool of at least two
// connections). When another indexer holds the lease, Run waits and takes
// it over once it expires. Errors are logged and retried with backoff;
// only an invalid state of the Indexer itself (ErrClosed) is returned, or
// ErrNoEmbedder when the registry holds a vector derived from text and the
// Indexer has no embedder.
//
// With an embedder (WithEmbedder), Run also runs embedding rounds in a
// goroutine of its own, while it holds the lease, so that applying never
// waits on the embedding service.
func (ix *Indexer) Run(ctx context.Context) error {
	if err := ix.checkEmbedder(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: like a stop at any later point
		}
		return err
	}
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return ErrClosed
	}
	if ix.running > 0 {
		ix.mu.Unlock()
		return fmt.Errorf("indexer: Run is already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	ix.running++
	ix.stop, ix.runDone = cancel, make(chan struct{})
	done := ix.runDone
	ix.mu.Unlock()
	defer func() {
		cancel()
		ix.mu.Lock()
		ix.running--
		ix.stop = nil
		ix.mu.Unlock()
		close(done)
	}()
	defer ix.releaseLease(ctx)
	if ix.embed != nil {
		embedDone := make(chan struct{})
		go func() {
			defer close(embedDone)
			ix.embedLoop(ctx)
		}()
		defer func() { <-embedDone }()
		defer cancel()
	}

	watch := &versionWatch{db: ix.db}
	defer watch.close()
	var version int64 = -1

	ticker := time.NewTicker(ix.cfg.pollInterval)
	defer ticker.Stop()
	failures := ix.cfg.newBackoff()
	failures.Reset()
	work := true // check for work at start
	for {
		if ctx.Err() != nil {
			return nil
		}
		if work {
			work = false
			applied, final, err := ix.applyPending(ctx, 0, true, true)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, errNotHolder):
				// Someone else applies; poll for the lease.
			case err != nil:
				ix.log.Error("apply failed", "err", err)
				ix.observeError(err)
				d := failures.NextBackOff()
				if d < 0 {
					failures.Reset()
					d = ix.cfg.pollInterval
				}
				if sleep(ctx, d) != nil {
					return nil
				}
				work = true
				continue
			default:
				failures.Reset()
				if applied > 0 {
					// Copy what was written into the database file
					// here, off the application's commits (see
					// checkpointer).
					ix.ckpt.kick(ix.db, ix.log)
				}
				if !final {
					work = true
					continue
				}
				if _, err := ix.compactIfDue(ctx, false); err != nil && ctx.Err() == nil {
					ix.log.Warn("compaction failed", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ix.wake:
			work = true
		case <-ticker.C:
			v, ok, err := watch.read(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				ix.log.Warn("poll data_version", "err", err)
				work = true
				continue
			}
			if !ok {
				// A small pool (SetMaxOpenConns) is not watched: look at
				// the log on every tick.
				work = true
			} else if v != version {
				version = v
				work = true
				ix.ckpt.kick(ix.db, ix.log)
			}
			if !ix.LeaseHeld() || time.Until(ix.leaseExpiry()) < ix.cfg.leaseTTL/2 {
				work = true // take over a free lease, or renew ours
			}
		}
	}
}

func (ix *Indexer) leaseExpiry() time.Time {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.lease.ExpiresAt
}
