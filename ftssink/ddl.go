package ftssink

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// CreateSQL returns the CREATE VIRTUAL TABLE statement of the FTS5 sidecar of
// spec.
//
//   - external: content=<source>, content_rowid=<key>; the source's
//     soft-delete column is declared UNINDEXED so that queries read it live.
//   - intable: FTS5 keeps its own copy; an UNINDEXED "deleted" column (0/1).
//   - contentless: content=”, contentless_delete=1 so that deletes work,
//     contentless_unindexed=1 so that the "deleted" column is stored.
//
// For text primary keys the FTS5 rowid is assigned by the indexer through
// oi_keymap.
func CreateSQL(spec *outbox.Spec) (string, error) {
	f := spec.FTS
	if f == nil {
		return "", fmt.Errorf("%w: %s has no fts sidecar", outbox.ErrBadSpec, spec.Source)
	}
	if err := spec.Validate(); err != nil {
		return "", err
	}
	var parts []string
	for _, c := range f.Columns {
		parts = append(parts, outbox.Quote(c.Name))
	}
	switch f.Mode {
	case outbox.ModeExternal:
		if spec.SoftDelete != "" {
			parts = append(parts, outbox.Quote(spec.SoftDelete)+" UNINDEXED")
		}
		parts = append(parts, "content="+quoteLit(spec.Source), "content_rowid="+quoteLit(spec.Key))
	case outbox.ModeInTable:
		if spec.SoftDelete != "" {
			parts = append(parts, outbox.DeletedColumn+" UNINDEXED")
		}
	case outbox.ModeContentless:
		if spec.SoftDelete != "" {
			parts = append(parts, outbox.DeletedColumn+" UNINDEXED")
		}
		parts = append(parts, "content=''", "contentless_delete=1", "contentless_unindexed=1")
	}
	if f.Tokenize != "" {
		parts = append(parts, "tokenize="+quoteLit(f.Tokenize))
	}
	if len(f.Prefix) > 0 {
		ps := make([]string, len(f.Prefix))
		for i, p := range f.Prefix {
			ps[i] = strconv.Itoa(p)
		}
		parts = append(parts, "prefix="+quoteLit(strings.Join(ps, " ")))
	}
	if f.Detail != "" && f.Detail != "full" {
		parts = append(parts, "detail="+f.Detail)
	}
	return fmt.Sprintf("CREATE VIRTUAL TABLE IF NOT EXISTS %s USING fts5(%s)", outbox.Quote(f.Live()), strings.Join(parts, ", ")), nil
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Create creates the FTS5 sidecar of spec if it does not exist, and gives
// it the live settings (on a table created by an earlier release too):
// the live page size (see Table.Fill) and no automatic merges (see
// Table.Bulk), setting only what differs: every migration calls Create,
// and a write to an FTS5 table's settings makes every connection reload
// its structure.
func Create(ctx context.Context, db outbox.DB, spec *outbox.Spec) error {
	q, err := CreateSQL(spec)
	if err != nil {
		return err
	}
	name := spec.FTS.Live()
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("ftssink: create %s: %w", name, err)
	}
	return liveSettings(ctx, db, name)
}

// liveSettings sets the live page size and merge settings on the FTS5
// table name where they differ. An absent setting is FTS5's default.
func liveSettings(ctx context.Context, db outbox.DB, name string) error {
	rows, err := db.QueryContext(ctx, `SELECT k, v FROM `+outbox.Quote(name+"_config")+` WHERE k IN ('pgsz', 'automerge', 'crisismerge', 'hashsize')`)
	if err != nil {
		return fmt.Errorf("ftssink: %s: read settings: %w", name, err)
	}
	have := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return fmt.Errorf("ftssink: %s: read settings: %w", name, err)
		}
		have[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ftssink: %s: read settings: %w", name, err)
	}
	for _, kv := range []struct {
		k string
		v int64
	}{{"pgsz", livePageSize}, {"automerge", liveAutomerge}, {"crisismerge", liveCrisismerge}, {"hashsize", liveHashSize}} {
		v, ok := have[kv.k]
		if ok && v == kv.v || !ok && kv.k == "hashsize" {
			// An absent hashsize is FTS5's default, the live one.
			continue
		}
		if err := setting(ctx, db, name, kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// Drop drops the FTS5 sidecar of spec if it exists. It is idempotent.
func Drop(ctx context.Context, db outbox.DB, spec *outbox.Spec) error {
	if spec.FTS == nil {
		return nil
	}
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+outbox.Quote(spec.FTS.Live())); err != nil {
		return fmt.Errorf("ftssink: drop %s: %w", spec.FTS.Live(), err)
	}
	// SQLite 3.47's FTS5 leaves the "<table>_content" shadow table of a
	// contentless_unindexed=1 table behind on DROP; a later CREATE of the
	// same table then fails. The FTS5 table is gone at this point, so the
	// name can only be that leftover.
	if spec.FTS.Mode == outbox.ModeContentless {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+outbox.Quote(spec.FTS.Live()+"_content")); err != nil {
			return fmt.Errorf("ftssink: drop %s: %w", spec.FTS.Live(), err)
		}
	}
	return nil
}
