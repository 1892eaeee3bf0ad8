package indexer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// Compact removes applied events that no rebuild needs any more, keeping,
// per live key, its latest applied event that carries a vector; events of
// tables without a vec sidecar, events without a vector, hard deletes and
// everything older than a newer vector of the same key go. Key floors
// the checkpoint has passed are deleted too. Events newer than
// the retention period (WithRetention) are kept in full. Compaction is
// incremental: it looks only at events applied since the last compaction,
// so its cost follows the write rate, not the log size. It returns the
// number of events removed.
func (ix *Indexer) Compact(ctx context.Context) (int, error) {
	if err := ix.checkOpen(); err != nil {
		return 0, err
	}
	if ix.cfg.retention < 0 {
		return 0, nil
	}
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	ix.lastComp = ix.cfg.now()
	total := 0
	for {
		var n int
		var more bool
		var held time.Duration
		err := ix.retry(ctx, func(ctx context.Context) error {
			return ix.inTx(ctx, func(tx *sql.Tx) error {
				t0 := time.Now()
				defer func() { held = time.Since(t0) }()
				var err error
				n, more, err = ix.compactTx(ctx, tx)
				return err
			})
		})
		total += n
		if err != nil || !more {
			if total > 0 {
				ix.log.Debug("compacted the log", "removed", total)
			}
			return total, err
		}
		// Each transaction covers as many events as fit in the lock
		// budget (WithRebuildStep), and writers get the lock between two.
		ix.compactN = tune(ix.compactN, held, ix.cfg.rebuildStep, 100, 1<<20)
		if err := ix.yield(ctx); err != nil {
			return total, err
		}
	}
}

// keepLatest points oi_latest at the vector events of the id range
// (?1, ?2] (?3: outbox.OpDelete), the newer one winning: in the window
// compaction just left, at most one per key and field.
const keepLatest = `INSERT INTO oi_latest (tbl, key, field, id)
	SELECT tbl, key, coalesce(field, ''), id FROM oi_events
	WHERE id > ?1 AND id <= ?2 AND vec IS NOT NULL AND length(vec) > 0 AND op != ?3
	ON CONFLICT (tbl, key, field) DO UPDATE SET id = excluded.id WHERE excluded.id > id`

func (ix *Indexer) compactTx(ctx context.Context, tx *sql.Tx) (removed int, more bool, err error) {
	from, err := outbox.Checkpoint(ctx, tx, outbox.CompactedCheckpoint)
	if err != nil {
		return 0, false, err
	}
	if ix.compactN <= 0 {
		ix.compactN = 2000
	}
	// oi_latest first covers what was compacted before it existed.
	filled, err := outbox.Checkpoint(ctx, tx, outbox.LatestCheckpoint)
	if err != nil {
		return 0, false, err
	}
	if filled < from {
		hi := min(filled+ix.compactN*4, from)
		if _, err := tx.ExecContext(ctx, keepLatest,
			filled, hi, int64(outbox.OpDelete)); err != nil {
			return 0, false, fmt.Errorf("compact: fill %s: %w", outbox.LatestTable, err)
		}
		return 0, true, outbox.SetCheckpoint(ctx, tx, outbox.LatestCheckpoint, hi)
	}
	upto, err := outbox.Checkpoint(ctx, tx, outbox.MainCheckpoint)
	if err != nil {
		return 0, false, err
	}
	if ix.cfg.retention > 0 {
		// Keep events younger than the retention period in full.
		cutoff := ix.cfg.now().Add(-ix.cfg.retention).UnixNano()
		var young sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT min(id) FROM oi_events WHERE id > ? AND id <= ? AND at >= ?`, from, upto, cutoff).Scan(&young); err != nil {
			return 0, false, fmt.Errorf("compact: %w", err)
		}
		if young.Valid {
			upto = young.Int64 - 1
		}
	}
	// A rebuild built in a side file needs the events above the log head
	// at its start, as they were logged, until its swap (see side.go).
	var keep sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(scanned) FROM oi_rebuild WHERE phase IN (?, ?, ?)`,
		outbox.PhaseSide, outbox.PhaseMove, outbox.PhaseCatchUp).Scan(&keep); err != nil && !strings.Contains(err.Error(), "no such table") {
		return 0, false, fmt.Errorf("compact: %w", err)
	}
	if keep.Valid {
		upto = min(upto, keep.Int64)
	}
	if upto <= from {
		return 0, false, nil
	}
	if upto-from > ix.compactN {
		upto, more = from+ix.compactN, true
	}
	tables, err := ix.registry.load(ctx, tx)
	if err != nil {
		return 0, false, err
	}
	exec := func(q string, args ...any) error {
		r, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("compact: %w", err)
		}
		n, _ := r.RowsAffected()
		removed += int(n)
		return nil
	}
	// Every statement reads the window (from, upto] by id, and older
	// events only through oi_latest's key: the cost follows the window,
	// not the log. n is, per key and vector field, the newest event of
	// the window that sets or deletes its vector; every older event of
	// that key and field goes, in the window and the one kept before it.
	const newest = `WITH n AS MATERIALIZED (
		SELECT tbl, key, coalesce(field, '') AS f, max(id) AS id FROM oi_events
		WHERE id > ?1 AND id <= ?2 AND (vec IS NOT NULL OR op = ?3) GROUP BY tbl, key, f)
		`
	if err := exec(newest+`DELETE FROM oi_events WHERE id IN (
		SELECT o.id FROM oi_events o JOIN n ON n.tbl = o.tbl AND n.key = o.key AND n.f = coalesce(o.field, '')
		WHERE o.id > ?1 AND o.id <= ?2 AND o.id < n.id
		UNION ALL
		SELECT l.id FROM n JOIN oi_latest l ON l.tbl = n.tbl AND l.key = n.key AND l.field = n.f WHERE l.id < n.id)`,
		from, upto, int64(outbox.OpDelete)); err != nil {
		return removed, false, err
	}
	multi := false
	for _, t := range tables {
		multi = multi || len(t.vecs) > 1
	}
	if multi {
		// A whole-row insert or delete supersedes the vectors of every
		// field of the key.
		const whole = `WITH n AS MATERIALIZED (
		SELECT tbl, key, max(id) AS id FROM oi_events
		WHERE id > ?1 AND id <= ?2 AND op IN (?3, ?4) AND field IS NULL GROUP BY tbl, key)
		`
		if err := exec(whole+`DELETE FROM oi_events WHERE id IN (
		SELECT o.id FROM oi_events o JOIN n ON n.tbl = o.tbl AND n.key = o.key
		WHERE o.id > ?1 AND o.id <= ?2 AND o.id < n.id AND o.field IS NOT NULL
		UNION ALL
		SELECT l.id FROM n JOIN oi_latest l ON l.tbl = n.tbl AND l.key = n.key WHERE l.field != '' AND l.id < n.id)`,
			from, upto, int64(outbox.OpDelete), int64(outbox.OpInsert)); err != nil {
			return removed, false, err
		}
		if _, err := tx.ExecContext(ctx, whole+`DELETE FROM oi_latest WHERE (tbl, key, field, id) IN (
		SELECT l.tbl, l.key, l.field, l.id FROM n JOIN oi_latest l ON l.tbl = n.tbl AND l.key = n.key WHERE l.field != '' AND l.id < n.id)`,
			from, upto, int64(outbox.OpDelete), int64(outbox.OpInsert)); err != nil {
			return removed, false, fmt.Errorf("compact: %w", err)
		}
	}
	// What is left of each key and field in the window is its newest
	// event: a vector to keep (oi_latest points at it) or a delete (the
	// key has no vector to keep any more).
	if _, err := tx.ExecContext(ctx, keepLatest,
		from, upto, int64(outbox.OpDelete)); err != nil {
		return removed, false, fmt.Errorf("compact: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM oi_latest WHERE (tbl, key, field) IN (
		SELECT tbl, key, coalesce(field, '') FROM oi_events WHERE id > ?1 AND id <= ?2 AND op = ?3)`,
		from, upto, int64(outbox.OpDelete)); err != nil {
		return removed, false, fmt.Errorf("compact: %w", err)
	}
	if err := exec(`DELETE FROM oi_events WHERE id > ? AND id <= ? AND (vec IS NULL OR length(vec) = 0 OR op = ?)`, from, upto, int64(outbox.OpDelete)); err != nil {
		return removed, false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE oi_events SET old = NULL WHERE id > ? AND id <= ? AND old IS NOT NULL`, from, upto); err != nil {
		return removed, false, fmt.Errorf("compact: %w", err)
	}
	for name, t := range tables {
		if t.spec != nil && t.spec.Vec == nil {
			if err := exec(`DELETE FROM oi_events WHERE tbl = ? AND id > ? AND id <= ?`, name, from, upto); err != nil {
				return removed, false, err
			}
		}
	}
	// Rebuild floors the checkpoint has passed are of no use any more.
	if _, err := tx.ExecContext(ctx, `DELETE FROM oi_checkpoint WHERE name >= ? AND name < ? AND position <= (SELECT position FROM oi_checkpoint WHERE name = ?)`,
		outbox.RebuiltPrefix, "rebuilt;", outbox.MainCheckpoint); err != nil {
		return removed, false, fmt.Errorf("compact: %w", err)
	}
	// So are key floors (see outbox.KeyFloors).
	main, err := outbox.Checkpoint(ctx, tx, outbox.MainCheckpoint)
	if err != nil {
		return removed, false, err
	}
	if err := outbox.PruneKeyFloors(ctx, tx, main); err != nil {
		return removed, false, err
	}
	if err := outbox.SetCheckpoint(ctx, tx, outbox.CompactedCheckpoint, upto); err != nil {
		return removed, false, err
	}
	if err := outbox.SetCheckpoint(ctx, tx, outbox.LatestCheckpoint, upto); err != nil {
		return removed, false, err
	}
	return removed, more, nil
}
