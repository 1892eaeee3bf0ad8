// Package outbox owns the on-disk contract between capture and indexing: the
// event log (table oi_events), the registry of sidecar specs (oi_registry), the
// indexer's bookkeeping tables (checkpoint, lease, dead letters, key map) and
// the Sink interface that every sidecar kind implements.
//
// The gorm plugin appends events with [Append] inside the application's own
// transaction; the indexer reads them in id order and applies them to sinks.
// Nothing in this package knows about Go model types: a standalone binary can
// read everything it needs from the database.
package outbox
