package indexer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// compactChunk bounds the id range one compaction transaction covers.
const compactChunk = 20000

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
		err := ix.retry(ctx, func(ctx context.Context) error {
			return ix.inTx(ctx, func(tx *sql.Tx) error {
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
	}
}

func (ix *Indexer) compactTx(ctx context.Context, tx *sql.Tx) (removed int, more bool, err error) {
	from, err := outbox.Checkpoint(ctx, tx, outbox.CompactedCheckpoint)
	if err != nil {
		return 0, false, err
	}
	upto, err := outbox.Checkpoint(ctx, tx, outbox.MainCheckpoint)
	if err != nil {
		return 0, false, err
	}
	if ix.cfg.retention > 0 {
		cutoff := ix.cfg.now().Add(-ix.cfg.retention).UnixNano()
		var young sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT min(id) FROM oi_events WHERE id > ? AND id <= ? AND at >= ?`, from, upto, cutoff).Scan(&young); err != nil {
			return 0, false, fmt.Errorf("compact: %w", err)
		}
		if young.Valid {
			upto = young.Int64 - 1
		}
	}
	if upto <= from {
		return 0, false, nil
	}
	if upto-from > compactChunk {
		upto, more = from+compactChunk, true
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
	// Older events of a key that a newer applied vector or hard delete
	// supersedes. The log has no (tbl, key) index: the newest such event of
	// each key of the range goes into a materialized table that SQLite
	// indexes (automatic index) and every retained event up to the range's
	// end is probed against it once — one pass over what retention keeps
	// (about one event per live key), not a lookup per event.
	//
	// Vectors of a model's further vector fields (field NOT NULL) are kept
	// per (key, field): the newest vector event of each field survives. A
	// hard delete or an insert (field NULL) ends them all, so it supersedes
	// every older event of the key's further fields.
	if err := exec(`WITH n AS MATERIALIZED (
		SELECT tbl, key, coalesce(field, '') AS f, max(id) AS id FROM oi_events
		WHERE id > ?1 AND id <= ?2 AND (vec IS NOT NULL OR op = ?3) GROUP BY tbl, key, f)
		DELETE FROM oi_events WHERE id IN (
		SELECT o.id FROM oi_events o JOIN n ON n.tbl = o.tbl AND n.key = o.key AND n.f = coalesce(o.field, '')
		WHERE o.id <= ?2 AND o.id < n.id)`, from, upto, int64(outbox.OpDelete)); err != nil {
		return removed, false, err
	}
	multi := false
	for _, t := range tables {
		multi = multi || len(t.vecs) > 1
	}
	if multi {
		if err := exec(`WITH n AS MATERIALIZED (
		SELECT tbl, key, max(id) AS id FROM oi_events
		WHERE id > ?1 AND id <= ?2 AND op IN (?3, ?4) AND field IS NULL GROUP BY tbl, key)
		DELETE FROM oi_events WHERE id IN (
		SELECT o.id FROM oi_events o JOIN n ON n.tbl = o.tbl AND n.key = o.key
		WHERE o.id <= ?2 AND o.id < n.id AND o.field IS NOT NULL)`, from, upto, int64(outbox.OpDelete), int64(outbox.OpInsert)); err != nil {
			return removed, false, err
		}
	}
	// Applied events that carry no vector (or "no vector"), hard deletes.
	if err := exec(`DELETE FROM oi_events WHERE id > ? AND id <= ? AND (vec IS NULL OR length(vec) = 0 OR op = ?)`, from, upto, int64(outbox.OpDelete)); err != nil {
		return removed, false, err
	}
	// The events kept are there for their vectors: a before-image (the
	// indexed text, as long as the document itself) only serves the apply
	// of a pending event, and Rebuild re-derives text from the source.
	if _, err := tx.ExecContext(ctx, `UPDATE oi_events SET old = NULL WHERE id > ? AND id <= ? AND old IS NOT NULL`, from, upto); err != nil {
		return removed, false, fmt.Errorf("compact: %w", err)
	}
	// Every applied event of a table without a vec sidecar.
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
	return removed, more, nil
}
