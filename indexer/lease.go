package indexer

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// ensureLease makes sure this indexer holds the lease, renewing it when less
// than half its time to live is left, and taking it when it is free or
// expired. It returns false (and no error) when another live holder has it.
func (ix *Indexer) ensureLease(ctx context.Context) (bool, error) {
	now := ix.cfg.now()
	ix.mu.Lock()
	cur, held := ix.lease, ix.held
	ix.mu.Unlock()
	if held && cur.ExpiresAt.Sub(now) > ix.cfg.leaseTTL/2 {
		return true, nil
	}
	if !held {
		// A cheap read first: do not take the write lock while another
		// holder's lease is live.
		var other outbox.Lease
		var exists bool
		err := ix.retry(ctx, func(ctx context.Context) error {
			var err error
			other, exists, err = outbox.ReadLease(ctx, ix.db, ix.cfg.leaseName)
			return err
		})
		if err != nil {
			return false, err
		}
		if exists && other.ExpiresAt.After(now) && other.Holder != ix.cfg.holder {
			return false, nil
		}
	}
	var (
		got outbox.Lease
		ok  bool
	)
	err := ix.retry(ctx, func(ctx context.Context) error {
		return ix.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			token := int64(0)
			if held {
				token = cur.Token
			}
			got, ok, err = outbox.AcquireLease(ctx, tx, ix.cfg.leaseName, ix.cfg.holder, token, ix.cfg.leaseTTL, ix.cfg.now())
			return err
		})
	})
	if err != nil {
		return false, err
	}
	ix.setLease(got, ok)
	return ok, nil
}

func (ix *Indexer) setLease(l outbox.Lease, held bool) {
	ix.mu.Lock()
	changed := ix.held != held || (held && ix.lease.Token != l.Token)
	if held {
		ix.lease = l
	}
	ix.held = held
	ix.mu.Unlock()
	if changed {
		if held {
			ix.log.Info("lease acquired", "lease", l.Name, "token", l.Token)
		} else {
			ix.log.Info("lease not held", "lease", ix.cfg.leaseName, "holder", l.Holder)
		}
		if f := ix.cfg.observer.Lease; f != nil {
			f(held)
		}
	}
}

// leaseToken returns the token this indexer holds, for fencing.
func (ix *Indexer) leaseToken() (int64, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.lease.Token, ix.held
}

// fence re-checks the lease inside an apply transaction and extends it.
func (ix *Indexer) fence(ctx context.Context, tx *sql.Tx) error {
	token, held := ix.leaseToken()
	if !held {
		return outbox.ErrLeaseLost
	}
	exp := ix.cfg.now().Add(ix.cfg.leaseTTL)
	if err := outbox.FenceLease(ctx, tx, ix.cfg.leaseName, ix.cfg.holder, token, exp); err != nil {
		return err
	}
	return nil
}

// extended records the expiry written by a committed fence.
func (ix *Indexer) extended(at time.Time) {
	ix.mu.Lock()
	if ix.held {
		ix.lease.ExpiresAt = at.Add(ix.cfg.leaseTTL)
	}
	ix.mu.Unlock()
}

func (ix *Indexer) lostLease() {
	ix.mu.Lock()
	was := ix.held
	ix.held = false
	ix.mu.Unlock()
	if was {
		ix.log.Warn("lease lost to another indexer", "lease", ix.cfg.leaseName)
		if f := ix.cfg.observer.Lease; f != nil {
			f(false)
		}
	}
}

// releaseLease gives the lease up so that another indexer can take over
// without waiting for it to expire.
func (ix *Indexer) releaseLease(ctx context.Context) error {
	return ix.release(ctx, slog.LevelInfo)
}

// releaseOneShot gives up the lease that a one-shot call (Drain, Sync) took,
// unless Run is running on this Indexer: a worker keeps its lease, but a
// one-shot caller is not a worker, and a lease it kept would make the next
// indexer on the database wait up to the lease TTL. Callers of Drain need
// not Close the Indexer for that. A failure to release is logged, not
// returned: the call's work is committed, and the lease then merely expires.
func (ix *Indexer) releaseOneShot(ctx context.Context) {
	idle := func() bool {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		return ix.running == 0 && ix.held
	}
	// Checked first without applyMu, which a running worker holds for
	// whole backlogs: a Worker's Sync must not wait for it.
	if !idle() {
		return
	}
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	if !idle() {
		return
	}
	if err := ix.release(ctx, slog.LevelDebug); err != nil {
		ix.log.Warn("release the lease after a one-shot call; it expires after its TTL", "lease", ix.cfg.leaseName, "err", err)
	}
}

func (ix *Indexer) release(ctx context.Context, level slog.Level) error {
	token, held := ix.leaseToken()
	if !held {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := ix.inTx(ctx, func(tx *sql.Tx) error {
		return outbox.ReleaseLease(ctx, tx, ix.cfg.leaseName, ix.cfg.holder, token)
	})
	ix.mu.Lock()
	ix.held = false
	ix.mu.Unlock()
	ix.log.Log(ctx, level, "lease released", "lease", ix.cfg.leaseName)
	if f := ix.cfg.observer.Lease; f != nil {
		f(false)
	}
	return err
}
