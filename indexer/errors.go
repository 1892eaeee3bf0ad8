package indexer

import (
	"errors"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrLeaseLost reports that another indexer took the lease over while
	// this one was applying (its lease had expired): the batch in flight was
	// rolled back and nothing was written.
	ErrLeaseLost = outbox.ErrLeaseLost
	// ErrNotRegistered reports a table that has no registry entry.
	ErrNotRegistered = outbox.ErrNotRegistered
	// ErrDrift reports an external-content FTS5 sidecar that drifted from
	// its source table; Rebuild the table.
	ErrDrift = outbox.ErrDrift
	// ErrClosed reports a call on a closed Indexer.
	ErrClosed = errors.New("indexer: closed")
	// ErrReadOnly reports that the Indexer's database handle cannot write:
	// it was opened read-only (a mode=ro URI) or on a write-protected file.
	// A SQLite connection stays read-only until it is reopened, so the call
	// fails at once instead of retrying; the error also wraps the driver's
	// SQLITE_READONLY. Run, which never returns such errors, logs it and
	// keeps retrying with backoff.
	ErrReadOnly = errors.New("indexer: the database handle is read-only")
	// ErrNotInTransaction reports a SyncTx call whose *gorm.DB is not a
	// transaction (db.Begin(), or the tx of db.Transaction). Use Sync
	// outside transactions.
	// ErrNoEmbedder reports a registered table with a derived vector
	// (`vec:"…;from=…"`) on an Indexer that has no embedder (WithEmbedder,
	// or the binary's --embed-api flags): the indexer refuses to start
	// rather than leave such vectors unset or park their events.
	ErrNoEmbedder       = errors.New("indexer: a vector is derived from text (from=) but the indexer has no embedder (indexer.WithEmbedder/WithNamedEmbedder, or the binary's --embed-api/--embedder)")
	ErrNotInTransaction = errors.New("indexer: SyncTx needs a transaction (the tx of db.Transaction or db.Begin()); outside one, use Sync")
)
