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
)
