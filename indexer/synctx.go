package indexer

import (
	"context"
	"errors"
	"fmt"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// syncTxSavepoint is the savepoint SyncTx wraps its work in, so that a
// failure leaves the caller's transaction as it was.
const syncTxSavepoint = "outboxindexer_synctx"

// SyncTx applies every pending event inside the caller's transaction tx,
// on tx's own connection (tx.Statement.ConnPool): the sidecars and the
// checkpoint change in tx, atomically with it, so that queries through tx
// (vecsink.KNN, ftssink.Search, hybrid.Search with tx) see the rows tx
// wrote; a rollback of tx undoes the writes, their events and their
// indexing together; a commit publishes them together, and the indexer
// that holds the lease continues from the checkpoint SyncTx left.
//
//	err := db.Transaction(func(tx *gorm.DB) error {
//		if err := tx.Create(&post).Error; err != nil {
//			return err
//		}
//		if err := ix.SyncTx(ctx, tx); err != nil {
//			return err
//		}
//		hits, err := ftssink.Search[Post](ctx, tx, ftssink.Term("volcano")) // sees post
//		…
//	})
//
// Why it is sound without the lease: tx holds SQLite's write lock (with
// gormplugin.DSN, whose _txlock=immediate takes it at BEGIN; otherwise it
// is taken by tx's first write, and SQLite fails SyncTx with SQLITE_BUSY if
// tx read a snapshot that another writer has since made stale), so no
// applier can commit between SyncTx's reads and tx's commit. SyncTx reads
// the checkpoint, the log, the registry and the source rows through tx and
// applies with the same machinery as Drain, in batches, up to the log head;
// every apply transaction of the lease holder either committed before tx
// took the lock (SyncTx starts after it) or begins after tx ends (and reads
// the checkpoint tx committed, or the old one if tx rolled back). The lease
// is therefore neither taken nor checked, and a worker keeps it. Dead
// letters block their keys and tables as in Drain (their newer events are
// parked, in tx); SyncTx neither retries failing events nor parks them: it
// returns the failure, after undoing its own work (a savepoint) so that tx
// is as it was, and the lease holder retries and parks as usual.
//
// tx must be a transaction (db.Transaction's tx, or db.Begin()): otherwise
// SyncTx returns ErrNotInTransaction. Everything is read and written
// through tx, so pass a transaction on the Indexer's database. SyncTx does
// not take the Indexer's apply lock, so it never waits for a worker of the
// same process (whose own transaction waits for tx instead). Observer.Parked
// is not called for events parked in tx, since tx may yet roll back; they
// are logged.
func (ix *Indexer) SyncTx(ctx context.Context, tx *gorm.DB) error {
	if err := ix.checkOpen(); err != nil {
		return err
	}
	if tx == nil || tx.Statement == nil || tx.Statement.ConnPool == nil {
		return fmt.Errorf("%w: tx is nil", ErrNotInTransaction)
	}
	pool := tx.Statement.ConnPool
	if _, ok := pool.(gorm.TxCommitter); !ok {
		return fmt.Errorf("%w: tx's connection is a %T, not a transaction", ErrNotInTransaction, pool)
	}
	var conn outbox.DB = pool
	if _, err := conn.ExecContext(ctx, `SAVEPOINT `+syncTxSavepoint); err != nil {
		return ix.syncTxError(fmt.Errorf("open savepoint: %w", err))
	}
	applied, err := ix.syncTx(ctx, conn)
	if err != nil {
		// The savepoint's undo must run even when ctx is done.
		uctx := context.WithoutCancel(ctx)
		_, rerr := conn.ExecContext(uctx, `ROLLBACK TO `+syncTxSavepoint)
		if rerr == nil {
			_, rerr = conn.ExecContext(uctx, `RELEASE `+syncTxSavepoint)
		}
		if rerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w; roll tx back", rerr))
		}
		return ix.syncTxError(err)
	}
	if _, err := conn.ExecContext(ctx, `RELEASE `+syncTxSavepoint); err != nil {
		return ix.syncTxError(fmt.Errorf("release savepoint: %w", err))
	}
	if applied > 0 {
		ix.log.Debug("applied in the caller's transaction", "events", applied)
	}
	return nil
}

// syncTx applies batches through conn until the checkpoint reaches the log
// head. It uses a registry cache of its own and no parking decisions, so it
// touches no state that applyMu guards.
func (ix *Indexer) syncTx(ctx context.Context, conn outbox.DB) (int, error) {
	var reg registry
	applied := 0
	for {
		if err := ctx.Err(); err != nil {
			return applied, err
		}
		res, err := ix.applyTx(ctx, conn, &reg, nil, ix.cfg.now(), ix.cfg.batchSize)
		if err != nil {
			return applied, err
		}
		applied += res.events
		for _, p := range res.parks {
			ix.log.Warn("events parked behind dead letters in the caller's transaction", "table", p.table, "events", len(p.ids), "reason", p.reason)
		}
		if res.final {
			return applied, nil
		}
	}
}

func (ix *Indexer) syncTxError(err error) error {
	if readOnly(err) && !errors.Is(err, ErrReadOnly) {
		err = fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	ix.observeError(err)
	return fmt.Errorf("indexer: SyncTx: %w", err)
}
