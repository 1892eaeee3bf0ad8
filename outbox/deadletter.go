package outbox

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// TableFailure prefixes the error text of dead letters parked because their
// whole table failed (a missing source or sidecar table, a bad registry
// entry) rather than one key. While a table has such dead letters, the
// indexer parks its new events behind them without trying them, so that
// nothing is applied out of order; retrying the dead letters or rebuilding
// the table lifts the block.
const TableFailure = "table failure: "

// DeadLetter is a row of oi_deadletters: an event that kept failing, parked
// with its last error.
type DeadLetter struct {
	RawEvent           // the event as it was in oi_events (same id)
	Error    string    // the last error
	Attempts int       // how many times it was tried
	FailedAt time.Time // when it was parked
}

// EnsureIndexerSchema adds what the indexer needs on top of EnsureSchema: an
// index that finds a key's dead letters. It is idempotent.
func EnsureIndexerSchema(ctx context.Context, db DB) error {
	if _, err := db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS oi_deadletters_key ON oi_deadletters (tbl, key)`); err != nil {
		return fmt.Errorf("outbox: create dead-letter index: %w", err)
	}
	return nil
}

// ParkEvents moves events from oi_events to oi_deadletters, keeping their
// ids, with the error text and attempt count.
func ParkEvents(ctx context.Context, db DB, ids []int64, errText string, attempts int, now time.Time) error {
	for start := 0; start < len(ids); start += keyChunk {
		chunk := ids[start:min(start+keyChunk, len(ids))]
		args := make([]any, 0, len(chunk)+3)
		args = append(args, errText, attempts, now.UnixNano())
		for _, id := range chunk {
			args = append(args, id)
		}
		in := Placeholders(len(chunk))
		if _, err := db.ExecContext(ctx, `INSERT OR REPLACE INTO oi_deadletters (id, tbl, key, op, vec, old, at, field, error, attempts, failed_at)
			SELECT id, tbl, key, op, vec, old, at, field, ?, ?, ? FROM oi_events WHERE id IN (`+in+`)`, args...); err != nil {
			return fmt.Errorf("outbox: park events: %w", err)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM oi_events WHERE id IN (`+in+`)`, args[3:]...); err != nil {
			return fmt.Errorf("outbox: park events: %w", err)
		}
	}
	return nil
}

// CountDeadLetters returns the number of parked events.
func CountDeadLetters(ctx context.Context, db DB) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM oi_deadletters`).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox: count dead letters: %w", err)
	}
	return n, nil
}

// ListDeadLetters returns up to limit dead letters with id > after, in id
// order (limit <= 0: all).
func ListDeadLetters(ctx context.Context, db DB, after int64, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.QueryContext(ctx, `SELECT `+RawEventColumns+`, error, attempts, failed_at FROM oi_deadletters WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: list dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var failed int64
		if err := rows.Scan(&d.ID, &d.Table, &d.Key, &d.Op, &d.Vec, &d.Old, &d.At, &d.Field, &d.Error, &d.Attempts, &failed); err != nil {
			return nil, fmt.Errorf("outbox: list dead letters: %w", err)
		}
		d.FailedAt = time.Unix(0, failed)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: list dead letters: %w", err)
	}
	return out, nil
}

// RequeueDeadLetters moves dead letters back into oi_events as new events
// (new ids, after any checkpoint), in their original order. With ids, every
// dead letter of the same (table, key) as one of ids is re-queued too, so
// that a key's events are never applied out of order; with no ids, all are.
// It returns the number of events re-queued. Run it inside a write
// transaction.
func RequeueDeadLetters(ctx context.Context, db DB, ids ...int64) (int, error) {
	where := "1"
	var args []any
	if len(ids) > 0 {
		var sb strings.Builder
		sb.WriteString(`(tbl, key) IN (SELECT tbl, key FROM oi_deadletters WHERE id IN (`)
		sb.WriteString(Placeholders(len(ids)))
		sb.WriteString(`))`)
		where = sb.String()
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT id FROM oi_deadletters WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return 0, fmt.Errorf("outbox: requeue dead letters: %w", err)
	}
	var all []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("outbox: requeue dead letters: %w", err)
		}
		all = append(all, id)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, fmt.Errorf("outbox: requeue dead letters: %w", err)
	}
	// A key floor covers the parked events at or below it (their text is
	// indexed already); re-queued, they get new ids past the floor, so the
	// floor moves to the new id of the last of them. New ids are assigned in
	// order from the head on (AUTOINCREMENT, inside this write transaction).
	head, err := Head(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("outbox: requeue dead letters: %w", err)
	}
	moved, err := floorsToMove(ctx, db, where, args)
	if err != nil {
		return 0, err
	}
	for start := 0; start < len(all); start += keyChunk {
		chunk := all[start:min(start+keyChunk, len(all))]
		cargs := make([]any, len(chunk))
		for i, id := range chunk {
			cargs[i] = id
		}
		in := Placeholders(len(chunk))
		if _, err := db.ExecContext(ctx, `INSERT INTO oi_events (tbl, key, op, vec, old, at, field)
			SELECT tbl, key, op, vec, old, at, field FROM oi_deadletters WHERE id IN (`+in+`) ORDER BY id`, cargs...); err != nil {
			return 0, fmt.Errorf("outbox: requeue dead letters: %w", err)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM oi_deadletters WHERE id IN (`+in+`)`, cargs...); err != nil {
			return 0, fmt.Errorf("outbox: requeue dead letters: %w", err)
		}
	}
	if len(moved) > 0 {
		pos := make(map[int64]int64, len(all))
		for i, id := range all {
			pos[id] = head + 1 + int64(i)
		}
		for _, m := range moved {
			if _, err := db.ExecContext(ctx, `UPDATE oi_floor SET upto = ? WHERE tbl = ? AND key = ?`, pos[m.id], m.tbl, m.key); err != nil {
				return 0, fmt.Errorf("outbox: requeue dead letters: move key floor: %w", err)
			}
		}
	}
	return len(all), nil
}

// movedFloor is a key floor to move to the new id of dead letter id.
type movedFloor struct {
	tbl string
	key any
	id  int64
}

// floorsToMove returns, for each key floor with dead letters (among those
// selected by where) at or below it, the last such dead letter.
func floorsToMove(ctx context.Context, db DB, where string, args []any) ([]movedFloor, error) {
	rows, err := db.QueryContext(ctx, `SELECT f.tbl, f.key, max(d.id) FROM oi_floor f JOIN oi_deadletters d ON d.tbl = f.tbl AND d.key = f.key AND d.id <= f.upto
		WHERE d.id IN (SELECT id FROM oi_deadletters WHERE `+where+`) GROUP BY f.tbl, f.key`, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: requeue dead letters: read key floors: %w", err)
	}
	defer rows.Close()
	var out []movedFloor
	for rows.Next() {
		var m movedFloor
		if err := rows.Scan(&m.tbl, &m.key, &m.id); err != nil {
			return nil, fmt.Errorf("outbox: requeue dead letters: read key floors: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: requeue dead letters: read key floors: %w", err)
	}
	return out, nil
}

// RestoreDeadLetters moves the dead letters of table tbl that decode and
// whose vector, if any, has a plausible size for dim (dim 0: any) back into
// oi_events under their original ids, as history, and deletes the others.
// Run it only inside the transaction that rebuilds the table's sidecars and
// sets its rebuild floor: the restored events are then already reflected in
// the sidecars. It returns how many events were restored and how many
// dropped.
//
// validVec, if not nil, is given the event's field (see Event.Field) and
// its non-empty vector.
func RestoreDeadLetters(ctx context.Context, db DB, tbl string, validVec func(field string, vec []byte) bool) (restored, dropped int, err error) {
	rows, err := db.QueryContext(ctx, `SELECT `+RawEventColumns+` FROM oi_deadletters WHERE tbl = ? ORDER BY id`, tbl)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: restore dead letters of %s: %w", tbl, err)
	}
	var keep, drop []int64
	for rows.Next() {
		r, err := ScanRawEvent(rows)
		if err != nil {
			rows.Close()
			return 0, 0, err
		}
		e, derr := r.Decode()
		if derr != nil || (len(r.Vec) > 0 && validVec != nil && !validVec(e.Field, r.Vec)) {
			drop = append(drop, r.ID)
		} else {
			keep = append(keep, r.ID)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: restore dead letters of %s: %w", tbl, err)
	}
	for start := 0; start < len(keep); start += keyChunk {
		chunk := keep[start:min(start+keyChunk, len(keep))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if _, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO oi_events (id, tbl, key, op, vec, old, at, field)
			SELECT id, tbl, key, op, vec, old, at, field FROM oi_deadletters WHERE id IN (`+Placeholders(len(chunk))+`)`, args...); err != nil {
			return 0, 0, fmt.Errorf("outbox: restore dead letters of %s: %w", tbl, err)
		}
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM oi_deadletters WHERE tbl = ?`, tbl); err != nil {
		return 0, 0, fmt.Errorf("outbox: restore dead letters of %s: %w", tbl, err)
	}
	return len(keep), len(drop), nil
}
