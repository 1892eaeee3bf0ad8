package indexer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// DeadLetter is an event parked in oi_deadletters after it kept failing,
// with its last error and attempt count. Its Key, Op and payload are as
// stored, since a malformed event may not decode.
type DeadLetter = outbox.DeadLetter

// DeadLetters lists the parked events in id order.
func (ix *Indexer) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	if err := ix.checkOpen(); err != nil {
		return nil, err
	}
	var out []DeadLetter
	err := ix.retry(ctx, func(ctx context.Context) error {
		var err error
		out, err = outbox.ListDeadLetters(ctx, ix.db, 0, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("indexer: %w", err)
	}
	return out, nil
}

// RetryDeadLetters moves parked events back into the log as new events, to
// be applied again after everything pending. With ids, every dead letter of
// the same key (table and key) as one of ids is re-queued with it, in the
// original order, so that a key's changes are never applied out of order;
// with no ids, all dead letters are. It returns how many events were
// re-queued. Fix the cause first (re-create a dropped sidecar with Rebuild,
// for example — which also folds the table's dead letters back by itself).
func (ix *Indexer) RetryDeadLetters(ctx context.Context, ids ...int64) (int, error) {
	if err := ix.checkOpen(); err != nil {
		return 0, err
	}
	ix.applyMu.Lock()
	n := 0
	err := ix.retry(ctx, func(ctx context.Context) error {
		return ix.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = outbox.RequeueDeadLetters(ctx, tx, ids...)
			return err
		})
	})
	if err == nil {
		clear(ix.attempts)
	}
	ix.applyMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("indexer: retry dead letters: %w", err)
	}
	ix.Notify()
	return n, nil
}
