package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Backfill: the rows a source table already holds when it is first
// migrated are queued for indexing in steps, so that a large table never
// holds the write lock for long. A queued table has a row in oi_backfill
// whose after column is the last key queued so far (NULL: none yet); each
// BackfillStep appends one event per next row, in key order, and moves it.
//
// A backfill event is OpUpdate with no vector and, for external-content
// FTS5, the row's current text as its before-image: it changes nothing in
// the source, so its before-image is what the index holds once the log
// before it is applied, and applying it is exact whether or not the key was
// already indexed by an event written after the migration.

// QueueBackfill queues every row of source for indexing, from the first
// key. Queuing a table that is already queued starts it over.
func QueueBackfill(ctx context.Context, db DB, source string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO oi_backfill (tbl, after, queued_at) VALUES (?, NULL, ?)
		ON CONFLICT (tbl) DO UPDATE SET after = NULL, queued_at = excluded.queued_at`, source, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("outbox: queue backfill of %s: %w", source, err)
	}
	return nil
}

// BackfillPending reports whether any table has a queued backfill.
func BackfillPending(ctx context.Context, db DB) (bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM oi_backfill)`).Scan(&n); err != nil {
		return false, fmt.Errorf("outbox: read backfills: %w", err)
	}
	return n == 1, nil
}

// Backfills returns the source tables with a queued backfill.
func Backfills(ctx context.Context, db DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT tbl FROM oi_backfill ORDER BY queued_at, tbl`)
	if err != nil {
		return nil, fmt.Errorf("outbox: read backfills: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("outbox: read backfills: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// BackfillStep appends the events of up to limit more rows of spec's
// queued backfill, in key order, and records how far it got; when no row is
// left it removes the table from oi_backfill and reports done. It returns
// the number of events appended. A table that is not queued is done. Run it
// in a write transaction.
func BackfillStep(ctx context.Context, db DB, spec *Spec, limit int) (n int64, done bool, err error) {
	var after any
	err = db.QueryRowContext(ctx, `SELECT after FROM oi_backfill WHERE tbl = ?`, spec.Source).Scan(&after)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("outbox: backfill %s: %w", spec.Source, err)
	}
	if b, ok := after.([]byte); ok {
		after = string(b)
	}
	src, key := Quote(spec.Source), Quote(spec.Key)
	cond, args := "", []any{}
	if after != nil {
		cond, args = " WHERE "+key+" > ?", []any{after}
	}
	var last any
	err = db.QueryRowContext(ctx, fmt.Sprintf(`SELECT max(k) FROM (SELECT %s AS k FROM %s%s ORDER BY %s LIMIT %d)`, key, src, cond, key, limit), args...).Scan(&last)
	if err != nil {
		return 0, false, fmt.Errorf("outbox: backfill %s: %w", spec.Source, err)
	}
	if b, ok := last.([]byte); ok {
		last = string(b)
	}
	if last == nil {
		if _, err := db.ExecContext(ctx, `DELETE FROM oi_backfill WHERE tbl = ?`, spec.Source); err != nil {
			return 0, false, fmt.Errorf("outbox: finish backfill of %s: %w", spec.Source, err)
		}
		return 0, true, nil
	}
	old := beforeImage(spec, "")
	where := " WHERE " + key + " <= ?"
	if after != nil {
		where = " WHERE " + key + " > ? AND " + key + " <= ?"
	}
	res, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO oi_events (tbl, key, op, vec, old, at) SELECT '%s', %s, %d, NULL, %s, %s FROM %s%s ORDER BY %s`,
		spec.Source, key, int(OpUpdate), old, triggerAt, src, where, key), append(args, last)...)
	if err != nil {
		return 0, false, fmt.Errorf("outbox: backfill %s: %w", spec.Source, err)
	}
	n, _ = res.RowsAffected()
	if _, err := db.ExecContext(ctx, `UPDATE oi_backfill SET after = ? WHERE tbl = ?`, last, spec.Source); err != nil {
		return 0, false, fmt.Errorf("outbox: backfill %s: %w", spec.Source, err)
	}
	return n, false, nil
}
