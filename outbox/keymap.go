package outbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
)

// keyChunk bounds the number of keys bound in one statement.
const keyChunk = 500

// KeyRowIDs returns the FTS5 rowids of text primary keys of table tbl from
// oi_keymap. With create, keys that have none get one (rowids are never
// reused: oi_keymap.rid is AUTOINCREMENT). Keys without a rowid are absent
// from the result.
func KeyRowIDs(ctx context.Context, db DB, tbl string, keys []string, create bool) (map[string]int64, error) {
	out := make(map[string]int64, len(keys))
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		args := make([]any, 0, 2*len(chunk)+1)
		if create {
			var sb strings.Builder
			sb.WriteString(`INSERT OR IGNORE INTO oi_keymap (tbl, key) VALUES `)
			for i, k := range chunk {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString("(?,?)")
				args = append(args, tbl, k)
			}
			if _, err := db.ExecContext(ctx, sb.String(), args...); err != nil {
				return nil, fmt.Errorf("outbox: assign rowids for %s: %w", tbl, err)
			}
			args = args[:0]
		}
		args = append(args, tbl)
		for _, k := range chunk {
			args = append(args, k)
		}
		rows, err := db.QueryContext(ctx, `SELECT key, rid FROM oi_keymap WHERE tbl = ? AND key IN (`+Placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("outbox: read rowids of %s: %w", tbl, err)
		}
		for rows.Next() {
			var k string
			var rid int64
			if err := rows.Scan(&k, &rid); err != nil {
				rows.Close()
				return nil, fmt.Errorf("outbox: read rowids of %s: %w", tbl, err)
			}
			out[k] = rid
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("outbox: read rowids of %s: %w", tbl, err)
		}
	}
	return out, nil
}

// DeleteKeyRowIDs forgets the rowids of keys of table tbl.
func DeleteKeyRowIDs(ctx context.Context, db DB, tbl string, keys []string) error {
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, tbl)
		for _, k := range chunk {
			args = append(args, k)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM oi_keymap WHERE tbl = ? AND key IN (`+Placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("outbox: delete rowids of %s: %w", tbl, err)
		}
	}
	return nil
}

// Placeholders returns n comma-separated "?" placeholders.
func Placeholders(n int) string { return sqlutil.Placeholders(n) }
