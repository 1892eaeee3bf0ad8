package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Names of rows in oi_checkpoint.
const (
	// MainCheckpoint is the position of the last applied event.
	MainCheckpoint = "main"
	// RebuiltPrefix prefixes per-table floors: "rebuilt:<table>" holds the log
	// head at the time the table's sidecars were last rebuilt. Events of that
	// table at or below the floor are already reflected in the sidecars and
	// are skipped by the applier even if they are above MainCheckpoint.
	RebuiltPrefix = "rebuilt:"
	// CompactedCheckpoint is the position up to which retention has
	// compacted the log.
	CompactedCheckpoint = "compacted"
	// LatestCheckpoint is the position up to which oi_latest holds the
	// vector events compaction kept (it trails CompactedCheckpoint only
	// in a database compacted before oi_latest existed, or by an older
	// build: compaction fills the gap first).
	LatestCheckpoint = "latest"
)

// Checkpoint returns the position stored under name, 0 if there is none.
func Checkpoint(ctx context.Context, db DB, name string) (int64, error) {
	var pos int64
	err := db.QueryRowContext(ctx, `SELECT position FROM oi_checkpoint WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("outbox: read checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// SetCheckpoint stores pos under name.
func SetCheckpoint(ctx context.Context, db DB, name string, pos int64) error {
	_, err := db.ExecContext(ctx, `INSERT INTO oi_checkpoint (name, position) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`, name, pos)
	if err != nil {
		return fmt.Errorf("outbox: write checkpoint %s: %w", name, err)
	}
	return nil
}

// DeleteCheckpoint removes the row stored under name.
func DeleteCheckpoint(ctx context.Context, db DB, name string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM oi_checkpoint WHERE name = ?`, name); err != nil {
		return fmt.Errorf("outbox: delete checkpoint %s: %w", name, err)
	}
	return nil
}

// Floors returns the per-table rebuild floors (see RebuiltPrefix).
func Floors(ctx context.Context, db DB) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, position FROM oi_checkpoint WHERE name >= ? AND name < ?`, RebuiltPrefix, RebuiltPrefix[:len(RebuiltPrefix)-1]+";")
	if err != nil {
		return nil, fmt.Errorf("outbox: read floors: %w", err)
	}
	defer rows.Close()
	var out map[string]int64
	for rows.Next() {
		var name string
		var pos int64
		if err := rows.Scan(&name, &pos); err != nil {
			return nil, fmt.Errorf("outbox: read floors: %w", err)
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[name[len(RebuiltPrefix):]] = pos
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: read floors: %w", err)
	}
	return out, nil
}

// Head returns the id of the newest event ever appended (0 for an empty
// log). Because ids come from AUTOINCREMENT, Head never goes backwards, even
// when the newest events were compacted or parked.
func Head(ctx context.Context, db DB) (int64, error) {
	var head int64
	err := db.QueryRowContext(ctx, `SELECT max(
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'oi_events'), 0),
		coalesce((SELECT max(id) FROM oi_events), 0))`).Scan(&head)
	if err != nil {
		return 0, fmt.Errorf("outbox: read log head: %w", err)
	}
	return head, nil
}
