package outbox

import (
	"context"
	"fmt"
)

// Key floors (table oi_floor) make external-content FTS5 exact without an
// index on the log. The indexer applies a key to its source row as it is
// when the batch commits; when later events of the key are still in the
// log, it records floor(tbl, key) = the log head read in that transaction.
// Every event of the key at or below the floor is then reflected in the FTS5
// index, and the first event after it carries, as its before-image, exactly
// the text that is indexed. The applier skips the FTS5 part of a key's
// events at or below its floor. A floor the main checkpoint has passed is of
// no further use and retention deletes it (unless dead letters of the key
// may still be re-queued under new ids, see RequeueDeadLetters).

// NextFloors returns the name the key floors of the new generation of
// source's online rebuild are recorded under during its catch-up (which
// applies the log to it on its own, behind the main checkpoint): they live
// until the swap, and retention does not prune them.
func NextFloors(source string) string { return nextFloorPrefix + source }

const nextFloorPrefix = "next:"

// KeyFloors returns the floors of the given keys of table tbl (keys with
// none are absent).
func KeyFloors(ctx context.Context, db DB, tbl string, keys []any) (map[any]int64, error) {
	out := map[any]int64{}
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		if err := func() error {
			rows, err := db.QueryContext(ctx, `SELECT key, upto FROM oi_floor WHERE tbl = ? AND key IN (`+Placeholders(len(chunk))+`)`, append([]any{tbl}, chunk...)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var k any
				var upto int64
				if err := rows.Scan(&k, &upto); err != nil {
					return err
				}
				nk, err := NormalizeKey(k)
				if err != nil {
					return err
				}
				out[nk] = upto
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("outbox: read key floors of %s: %w", tbl, err)
		}
	}
	return out, nil
}

// SetKeyFloors records upto as the floor of the given keys of table tbl.
func SetKeyFloors(ctx context.Context, db DB, tbl string, keys []any, upto int64) error {
	err := execValues(ctx, db, "INSERT INTO oi_floor (tbl, key, upto)", " ON CONFLICT (tbl, key) DO UPDATE SET upto = excluded.upto", 3, len(keys), func(i int) []any {
		return []any{tbl, keys[i], upto}
	})
	if err != nil {
		return fmt.Errorf("outbox: write key floors of %s: %w", tbl, err)
	}
	return nil
}

// DeleteKeyFloors removes every key floor of table tbl (a rebuild of the
// table reflects all its events up to the head).
func DeleteKeyFloors(ctx context.Context, db DB, tbl string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM oi_floor WHERE tbl = ?`, tbl); err != nil {
		return fmt.Errorf("outbox: delete key floors of %s: %w", tbl, err)
	}
	return nil
}

// PruneKeyFloors removes the key floors at or below upto (the main
// checkpoint): every event at or below them has been applied. A floor stays
// while its key has a dead letter at or below it, which a re-queue moves
// under a new id.
func PruneKeyFloors(ctx context.Context, db DB, upto int64) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM oi_floor WHERE upto <= ? AND substr(tbl, 1, ?) != ? AND NOT EXISTS (
		SELECT 1 FROM oi_deadletters d WHERE d.tbl = oi_floor.tbl AND d.key = oi_floor.key AND d.id <= oi_floor.upto)`, upto, len(nextFloorPrefix), nextFloorPrefix); err != nil {
		return fmt.Errorf("outbox: prune key floors: %w", err)
	}
	return nil
}
