package outbox

import (
	"context"
	"fmt"
)

// Table names owned by this package. They share the "oi_" prefix so that they
// never collide with an application's tables.
const (
	EventsTable      = "oi_events"      // the outbox: one row per change event
	RegistryTable    = "oi_registry"    // one row per indexed source table: its Spec as JSON
	CheckpointTable  = "oi_checkpoint"  // the indexer's position in oi_events
	LeaseTable       = "oi_lease"       // the single-applier lease with its fencing token
	DeadLetterTable  = "oi_deadletters" // events that kept failing, parked for an operator
	KeyMapTable      = "oi_keymap"      // FTS5 rowids assigned to string primary keys
	FloorTable       = "oi_floor"       // per-key "applied up to" positions of external-content FTS5
	BackfillTable    = "oi_backfill"    // source tables whose existing rows are still to be queued
	EmbedQueueTable  = "oi_embed_queue" // keys of derived (from=) vectors whose text may have changed
	EmbedStateTable  = "oi_embed_state" // per key of a derived vector: hash of the text its vector was computed from
	RebuildTable     = "oi_rebuild"     // online rebuilds in progress: one row per source table
	LatestTable      = "oi_latest"      // per key and vector field: the id of the one vector event compaction kept
	SchemaVersionKey = "oi_schema_version"
)

// SchemaVersion is the version of the tables below. It is stored in
// oi_checkpoint under SchemaVersionKey so that a newer binary can refuse, or
// migrate, an older database. Version 2 dropped the (tbl, key, id) index of
// oi_events (one page written per captured event) and added oi_floor.
// Version 3 captures with triggers on the source tables (see trigger.go) and
// added oi_backfill and the field column of oi_events and oi_deadletters
// (which vector of a model with several vector fields an event carries:
// NULL for the first one).
const SchemaVersion = 3

// schema creates every bookkeeping table. Each statement is idempotent.
//
// oi_events.key has no declared type on purpose: with BLOB affinity SQLite
// stores integer keys as integers and text keys as text, unconverted ("007"
// stays a string). AUTOINCREMENT guarantees that ids are never reused, so a
// checkpoint never skips an event even after the newest row was deleted.
// oi_floor.key is untyped for the same reason (see floor.go).
var schema = []string{
	`CREATE TABLE IF NOT EXISTS oi_events (
	id  INTEGER PRIMARY KEY AUTOINCREMENT,
	tbl TEXT    NOT NULL,
	key         NOT NULL,
	op  INTEGER NOT NULL,
	vec BLOB,
	old TEXT,
	at  INTEGER NOT NULL,
	field TEXT
)`,
	`CREATE TABLE IF NOT EXISTS oi_registry (
	source     TEXT PRIMARY KEY,
	spec       TEXT    NOT NULL,
	updated_at INTEGER NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS oi_checkpoint (
	name     TEXT PRIMARY KEY,
	position INTEGER NOT NULL
) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS oi_lease (
	name       TEXT PRIMARY KEY,
	holder     TEXT    NOT NULL,
	token      INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS oi_deadletters (
	id        INTEGER PRIMARY KEY,
	tbl       TEXT    NOT NULL,
	key               NOT NULL,
	op        INTEGER NOT NULL,
	vec       BLOB,
	old       TEXT,
	at        INTEGER NOT NULL,
	error     TEXT    NOT NULL,
	attempts  INTEGER NOT NULL,
	failed_at INTEGER NOT NULL,
	field     TEXT
)`,
	`CREATE TABLE IF NOT EXISTS oi_keymap (
	rid INTEGER PRIMARY KEY AUTOINCREMENT,
	tbl TEXT NOT NULL,
	key TEXT NOT NULL,
	UNIQUE (tbl, key)
)`,
	`CREATE TABLE IF NOT EXISTS oi_backfill (
	tbl       TEXT PRIMARY KEY,
	after,
	queued_at INTEGER NOT NULL
) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS oi_embed_queue (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	tbl       TEXT    NOT NULL,
	field     TEXT    NOT NULL,
	key               NOT NULL,
	queued_at INTEGER NOT NULL,
	UNIQUE (tbl, field, key)
)`,
	`CREATE TABLE IF NOT EXISTS oi_embed_state (
	tbl   TEXT NOT NULL,
	field TEXT NOT NULL,
	key        NOT NULL,
	hash  BLOB NOT NULL,
	PRIMARY KEY (tbl, field, key)
) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS oi_rebuild (
	tbl        TEXT PRIMARY KEY,
	spec       TEXT    NOT NULL,
	phase      TEXT    NOT NULL,
	after,
	scanned    INTEGER NOT NULL,
	done       INTEGER NOT NULL,
	total      INTEGER NOT NULL,
	started_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	old        TEXT,
	driver     TEXT
) WITHOUT ROWID`,
	// oi_latest lets compaction find the event a newer one supersedes
	// without an index on oi_events (which every capture would pay for):
	// compaction keeps it, in its own transactions. field is '' for the
	// row's main vector.
	`CREATE TABLE IF NOT EXISTS oi_latest (
	tbl   TEXT    NOT NULL,
	key           NOT NULL,
	field TEXT    NOT NULL,
	id    INTEGER NOT NULL,
	PRIMARY KEY (tbl, key, field)
) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS oi_floor (
	tbl  TEXT    NOT NULL,
	key          NOT NULL,
	upto INTEGER NOT NULL,
	PRIMARY KEY (tbl, key)
) WITHOUT ROWID`,
}

// EnsureSchema creates the bookkeeping tables if they do not exist and records
// the schema version. It is idempotent and cheap when the tables exist.
func EnsureSchema(ctx context.Context, db DB) error {
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("outbox: create schema: %w", err)
		}
	}
	var v int64
	err := db.QueryRowContext(ctx, `SELECT position FROM oi_checkpoint WHERE name = ?`, SchemaVersionKey).Scan(&v)
	switch {
	case err == nil && v > SchemaVersion:
		return fmt.Errorf("outbox: database schema version %d is newer than this build's %d: %w", v, SchemaVersion, ErrSchemaVersion)
	case err == nil && v == SchemaVersion:
		return nil
	case err == nil:
		// Version 1 indexed oi_events by (tbl, key, id); nothing reads it
		// any more and every capture paid a page for it.
		if _, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS oi_events_key`); err != nil {
			return fmt.Errorf("outbox: migrate schema from version %d: %w", v, err)
		}
		// Version 3 tells the vectors of a model's vector fields apart.
		for _, t := range []string{EventsTable, DeadLetterTable} {
			if err := addColumn(ctx, db, t, "field", "TEXT"); err != nil {
				return fmt.Errorf("outbox: migrate schema from version %d: %w", v, err)
			}
		}
		// Versions 1 and 2 captured in the gorm callbacks only; from 3 on the
		// source tables carry capture triggers.
		specs, _, err := LoadSpecs(ctx, db)
		if err != nil {
			return fmt.Errorf("outbox: migrate schema from version %d: %w", v, err)
		}
		for _, sp := range specs {
			if err := CreateTriggers(ctx, db, sp); err != nil {
				return fmt.Errorf("outbox: migrate schema from version %d: %w", v, err)
			}
		}
		if err := SetCheckpoint(ctx, db, SchemaVersionKey, SchemaVersion); err != nil {
			return fmt.Errorf("outbox: migrate schema from version %d: %w", v, err)
		}
		return nil
	}
	if _, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO oi_checkpoint (name, position) VALUES (?, ?)`, SchemaVersionKey, SchemaVersion); err != nil {
		return fmt.Errorf("outbox: record schema version: %w", err)
	}
	return nil
}

// addColumn adds column col (of SQL type typ) to table unless it has it.
func addColumn(ctx context.Context, db DB, table, col, typ string) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, col).Scan(&n); err != nil {
		return fmt.Errorf("read columns of %s: %w", table, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+Quote(table)+" ADD COLUMN "+Quote(col)+" "+typ); err != nil {
		return fmt.Errorf("add column %s.%s: %w", table, col, err)
	}
	return nil
}
