package outbox

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors of the apply path. Callers test them with errors.Is.
var (
	// ErrDrift reports an external-content FTS5 sidecar whose indexed text can
	// no longer be deleted exactly (a row indexed from text that no event
	// recorded, typically after a write that bypassed gorm). Only a rebuild of
	// the table repairs it.
	ErrDrift = errors.New("outbox: sidecar drifted from its source table, rebuild it")
	// ErrNoSidecar reports a sidecar table that the registry names but the
	// database does not have (dropped by hand, or never created).
	ErrNoSidecar = errors.New("outbox: sidecar table is missing")
)

// Change is the state one source row must be brought to in a sidecar. The
// indexer builds one Change per affected key of a batch from the key's events
// and the source row as it is now, read in the same write transaction.
type Change struct {
	// Key is the primary key: int64 for integer keys, string for text keys.
	Key any
	// Exists reports whether the source row exists (live or soft-deleted).
	Exists bool
	// Deleted reports whether the source row is soft-deleted.
	Deleted bool
	// Values holds the current source values of the sink's Columns, in that
	// order. It is nil when the row does not exist.
	Values []any
	// Vec is the latest vector state carried by the key's events: nil keeps
	// the stored vector, an empty non-nil slice means "no vector", anything
	// else is the new vector as written in oi_events.
	Vec []byte
	// Old is the before-image of the key's first pending event (external
	// content FTS5 only): the values that are indexed now, in FTSSpec.Columns
	// order. nil when the event carries none.
	Old []any
}

// ApplyOptions modify one Apply call.
type ApplyOptions struct {
	// Replay re-asserts state for events that were applied before. Sinks
	// whose apply depends on the exact previously indexed content (external
	// content FTS5, which needs before-images) must skip a replay: their state
	// cannot be re-derived from old events, only rebuilt.
	Replay bool
	// KeepKeyMap keeps the oi_keymap rowids of keys whose rows are gone:
	// the new generation of an online rebuild is applied first, and the
	// live one still needs them.
	KeepKeyMap bool
}

// RebuildOptions modify one Rebuild call.
type RebuildOptions struct {
	// BatchSize is the number of source rows filled per statement (<= 0: a
	// default).
	BatchSize int
	// Progress, if not nil, is called after each batch with the number of
	// source rows done so far and the total.
	Progress func(done, total int64)
}

// Sink is one sidecar table of one source table: a vec0 table or an FTS5
// table. The indexer drives every sink through this interface inside its own
// write transaction; a sink never commits.
type Sink interface {
	// Spec returns the registry spec the sink was built from.
	Spec() *Spec
	// Name returns the sidecar table name.
	Name() string
	// Columns returns the source columns whose current values Apply needs in
	// Change.Values, in order. The key and soft-delete columns are read by
	// the indexer and are not listed.
	Columns() []string
	// Exists reports whether the sidecar table exists.
	Exists(ctx context.Context, db DB) (bool, error)
	// Apply brings the sidecar to the state described by changes. Every key
	// appears at most once. A failure that concerns one key only is returned
	// as a *KeyError so that the caller can isolate the key; any other error
	// concerns the whole sink.
	Apply(ctx context.Context, tx DB, changes []Change, opts ApplyOptions) error
	// Rebuild drops and re-creates the sidecar and fills it from
	// authoritative data: text from the source table, vectors from the
	// retained event log. It returns the number of entries written.
	Rebuild(ctx context.Context, tx DB, opts RebuildOptions) (int64, error)
	// Count returns the number of entries in the sidecar.
	Count(ctx context.Context, db DB) (int64, error)
}

// KeyError is a failure that concerns a single key of a sink or of the log.
type KeyError struct {
	Table string // source table
	Key   any    // the key, int64 or string
	Err   error
}

// Error implements error.
func (e *KeyError) Error() string {
	return fmt.Sprintf("table %s key %v: %v", e.Table, e.Key, e.Err)
}

// Unwrap returns the underlying error.
func (e *KeyError) Unwrap() error { return e.Err }

// KeyRange selects the source rows one step of an online rebuild copies
// into the new generation of a sidecar.
type KeyRange struct {
	// Cond is an SQL condition on the source table, aliased s (such as
	// `s."id" > ? AND s."id" <= ?`), and Args its arguments.
	Cond string
	Args []any
	// VecStates names the table that holds, for every key and vector
	// field, the id of the newest retained event that sets the key's
	// vector state: (field, key, id), field "" for the first vector field
	// (VecStatesTable). Vector sinks read vectors through it.
	VecStates string
}

// Copier is a sink whose next generation an online rebuild can build
// beside the live one: Create makes the (empty) table the sink names, and
// CopyRange writes the entries of the source rows of one key range, from
// authoritative data (text from the source, vectors from the retained log
// through KeyRange.VecStates), inside the caller's write transaction. A
// sink that derives its entries otherwise (an embedder computing vectors
// from text, say) implements CopyRange its own way: the indexer only
// decides the ranges and keeps the copied ones in step with new events.
type Copier interface {
	Sink
	// Create creates the sidecar table the sink names, empty, if it does
	// not exist.
	Create(ctx context.Context, db DB) error
	// CopyRange writes the entries of the source rows in r and returns
	// how many it wrote.
	CopyRange(ctx context.Context, tx DB, r KeyRange) (int64, error)
}

// Merger is a sink whose index merges its segments (FTS5): Bulk prepares
// it for a build in many short transactions (on: no merge of a whole level
// inside one transaction) or restores the live settings (off), Build
// prepares it for a build nobody waits on that is merged into one segment
// at its end (no merges meanwhile; Bulk(false) restores), Fill sets
// only the size of what it writes (on: a bulk fill's; off: the live one),
// and Merge does about pages pages of merge work, returning how many rows
// of the index it wrote (0: it found no work), which reaches pages when it
// used its budget up. With pages < 0 Merge works toward a single segment
// (a whole merge in pieces of -pages pages) instead of merging full levels
// only.
type Merger interface {
	Bulk(ctx context.Context, db DB, on bool) error
	Build(ctx context.Context, db DB) error
	Fill(ctx context.Context, db DB, on bool) error
	Merge(ctx context.Context, db DB, pages int) (int64, error)
}
