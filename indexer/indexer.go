package indexer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// Indexer applies the outbox of one database to its sidecars. Its methods
// are safe for concurrent use; applying is serialized inside the process by
// a mutex and across processes by the lease.
type Indexer struct {
	db  *sql.DB
	cfg *config
	log *slog.Logger

	wake chan struct{}

	embed *embedding // derived vectors (from=); nil without WithEmbedder

	applyMu  sync.Mutex  // serializes apply, rebuild, replay and compaction in this process
	registry registry    // guarded by applyMu
	online   onlineState // guarded by applyMu
	mirrors  mirrorCache
	ckpt     checkpointer // background checkpoints of online rebuilds
	merges   liveMerges   // the live FTS5 sidecars' merges (merge.go)
	// triggersSeen is the schema version at the last look for missing
	// capture triggers that found none (backfillStep); guarded by applyMu.
	triggersSeen int64
	compactN     int64 // events per compaction transaction, tuned; guarded by applyMu
	// batchRows is the worker's events per batch, tuned (batchLimit);
	// guarded by applyMu.
	batchRows int
	attempts  map[unit]*attempt
	lastComp  time.Time

	mu      sync.Mutex // guards the fields below
	lease   outbox.Lease
	held    bool
	closed  bool
	running int
	stop    context.CancelFunc
	runDone chan struct{}
}

// New returns an Indexer for the database behind db. It creates the
// bookkeeping tables if needed and reads the sidecars to maintain from the
// registry (oi_registry) on every batch, so tables migrated later are picked
// up without a restart. It needs no Go model types. It fails at once when
// the database's connections lack sqlite-vec or FTS5 (a build of another
// engine, or a driver other than the one internal/engine registers them on).
func New(db *gorm.DB, opts ...Option) (*Indexer, error) {
	if db == nil {
		return nil, fmt.Errorf("indexer: db is nil")
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("indexer: %w", err)
	}
	cfg := defaults()
	for _, o := range opts {
		if err := o(cfg); err != nil {
			return nil, err
		}
	}
	ix := &Indexer{
		db:           sqlDB,
		cfg:          cfg,
		log:          cfg.logger.With("component", "indexer", "holder", cfg.holder),
		wake:         make(chan struct{}, 1),
		attempts:     map[unit]*attempt{},
		triggersSeen: -1,
	}
	if len(cfg.embedders) > 0 {
		e, err := newEmbedding(cfg)
		if err != nil {
			return nil, err
		}
		ix.embed = e
	}
	ctx := context.Background()
	if err := engine.Check(ctx, sqlDB); err != nil {
		return nil, fmt.Errorf("indexer: %w", err)
	}
	err = ix.retry(ctx, func(ctx context.Context) error {
		return ix.inTx(ctx, func(tx *sql.Tx) error {
			if err := outbox.EnsureSchema(ctx, tx); err != nil {
				return err
			}
			return outbox.EnsureIndexerSchema(ctx, tx)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("indexer: prepare database: %w", err)
	}
	return ix, nil
}

// Holder returns the identity this indexer writes in the lease row.
func (ix *Indexer) Holder() string { return ix.cfg.holder }

// Notify wakes Run promptly, for example right after a commit that
// appended events in the same process. It never blocks.
func (ix *Indexer) Notify() {
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// LeaseHeld reports whether this indexer currently holds the lease (as far
// as it knows: another indexer may take an expired lease at any time, which
// the next apply detects).
func (ix *Indexer) LeaseHeld() bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.held && ix.lease.ExpiresAt.After(ix.cfg.now())
}

// Close stops Run if it is running (waiting for the batch in flight to
// commit or roll back) and releases the lease, so that another indexer can
// take over at once. Calling Close again returns nil; the other methods
// return ErrClosed after it.
func (ix *Indexer) Close() error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return nil
	}
	ix.closed = true
	stop, done := ix.stop, ix.runDone
	ix.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	ix.embed.close()
	ix.ckpt.wait()
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	ix.closeSide()
	return ix.releaseLease(context.Background())
}

func (ix *Indexer) checkOpen() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	return nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE whatever the DSN
// says) and commits it, or rolls it back if fn fails.
func (ix *Indexer) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTxOn(ctx, ix.db, fn)
}

// inTxOn is inTx on b: the pool or one of its connections.
func inTxOn(ctx context.Context, b interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, fn func(tx *sql.Tx) error) error {
	tx, err := b.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// retry runs op until it succeeds, fails with a permanent error, or the
// backoff policy gives up; transient SQLite errors are retried.
func (ix *Indexer) retry(ctx context.Context, op func(ctx context.Context) error) error {
	b := ix.cfg.newBackoff()
	b.Reset()
	for {
		err := op(ctx)
		if readOnly(err) && !errors.Is(err, ErrReadOnly) {
			err = fmt.Errorf("%w: %w", ErrReadOnly, err)
		}
		if err == nil || !transient(err) || ctx.Err() != nil {
			if err != nil && ctx.Err() != nil {
				return errors.Join(err, ctx.Err())
			}
			return err
		}
		ix.observeError(err)
		d := b.NextBackOff()
		if d < 0 {
			return err
		}
		ix.log.Debug("transient failure, retrying", "err", err, "in", d)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

func (ix *Indexer) observeError(err error) {
	if f := ix.cfg.observer.Error; f != nil {
		f(err)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
