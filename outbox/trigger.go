package outbox

import (
	"context"
	"fmt"
	"strings"
)

// Capture triggers.
//
// Every indexed source table carries four AFTER triggers that append one
// event per changed row to oi_events, in the statement that changes it: they
// see exactly the rows a statement changes, whoever issued it (gorm, raw SQL,
// another tool, a foreign-key action, a REPLACE conflict resolution when
// recursive_triggers is on). The capture plugin only adds what the database
// cannot know: the vector (OpVector events), for the keys the statement
// really changed.
//
//   - <prefix>_ins  AFTER INSERT: OpInsert; vec is NoVector when the table
//     has a vec sidecar (a new row starts with no vector), NULL otherwise.
//   - <prefix>_upd  AFTER UPDATE OF the watched columns, key unchanged:
//     OpUpdate, OpSoftDelete or OpRestore (from the soft-delete column's
//     NULL-ness before and after), with the before-image.
//   - <prefix>_key  AFTER UPDATE OF the key, key changed: OpDelete of the
//     old key with its before-image, then OpInsert of the new key.
//   - <prefix>_del  AFTER DELETE: OpDelete with the before-image.
//
// The before-image (old) is written for external-content FTS5 only:
// json_array of the FTS source columns' OLD values.
//
// An UPDATE that names the key in its SET list fires <prefix>_upd for every
// row it matches even when no value changes; the plugin relies on that to
// learn which rows an update that sets a vector hit.

// TriggerPrefix is the common prefix of a source table's capture triggers.
func TriggerPrefix(source string) string { return "oi_" + source }

// TriggerNames returns the names of the capture triggers of source.
func TriggerNames(source string) []string {
	p := TriggerPrefix(source)
	return []string{p + "_ins", p + "_upd", p + "_key", p + "_del"}
}

// WatchedColumns returns the source columns whose change is an indexed
// change: the key, the FTS source columns, the soft-delete column, the vec
// metadata columns and the from= columns of derived vectors, without
// duplicates, in that order.
func (s *Spec) WatchedColumns() []string {
	seen := map[string]bool{}
	var out []string
	add := func(c string) {
		if c != "" && !seen[strings.ToLower(c)] {
			seen[strings.ToLower(c)] = true
			out = append(out, c)
		}
	}
	add(s.Key)
	if s.FTS != nil {
		for _, c := range s.FTS.Columns {
			add(c.Source)
		}
	}
	add(s.SoftDelete)
	for _, v := range s.VecSpecs() {
		for _, m := range v.Metadata {
			add(m.Name)
		}
	}
	for _, v := range s.VecSpecs() {
		for _, c := range v.From {
			add(c)
		}
	}
	return out
}

// triggerAt is the event time in unix nanoseconds, as Append writes it.
const triggerAt = `CAST(unixepoch('subsec') * 1000000000 AS INTEGER)`

// TriggerDDL returns the CREATE TRIGGER statements of spec's capture
// triggers. The spec must be valid (identifiers are checked by Validate).
func TriggerDDL(spec *Spec) []string {
	src, key := Quote(spec.Source), Quote(spec.Key)
	tbl := "'" + spec.Source + "'" // a plain identifier: no quote to escape
	names := TriggerNames(spec.Source)
	insVec := "NULL"
	if spec.Vec != nil {
		insVec = "''" // NoVector
	}
	old := beforeImage(spec, "OLD.")
	op := fmt.Sprint(int(OpUpdate))
	if spec.SoftDelete != "" {
		d := Quote(spec.SoftDelete)
		op = fmt.Sprintf("CASE WHEN OLD.%[1]s IS NULL AND NEW.%[1]s IS NOT NULL THEN %[2]d WHEN OLD.%[1]s IS NOT NULL AND NEW.%[1]s IS NULL THEN %[3]d ELSE %[4]d END",
			d, OpSoftDelete, OpRestore, OpUpdate)
	}
	watched := spec.WatchedColumns()
	of := make([]string, len(watched))
	for i, c := range watched {
		of[i] = Quote(c)
	}
	ins := func(k, op, vec, old string) string {
		return fmt.Sprintf("INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES (%s, %s, %s, %s, %s, %s);", tbl, k, op, vec, old, triggerAt)
	}
	return []string{
		fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s BEGIN %s END",
			Quote(names[0]), src, ins("NEW."+key, fmt.Sprint(int(OpInsert)), insVec, "NULL")),
		fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE OF %s ON %s WHEN OLD.%s IS NEW.%s BEGIN %s END",
			Quote(names[1]), strings.Join(of, ", "), src, key, key, ins("NEW."+key, op, "NULL", old)),
		fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE OF %s ON %s WHEN OLD.%s IS NOT NEW.%s BEGIN %s %s END",
			Quote(names[2]), key, src, key, key,
			ins("OLD."+key, fmt.Sprint(int(OpDelete)), "NULL", old), ins("NEW."+key, fmt.Sprint(int(OpInsert)), insVec, "NULL")),
		fmt.Sprintf("CREATE TRIGGER %s AFTER DELETE ON %s BEGIN %s END",
			Quote(names[3]), src, ins("OLD."+key, fmt.Sprint(int(OpDelete)), "NULL", old)),
	}
}

// beforeImage is the SQL of an event's old column: for external-content
// FTS5, json_array of the FTS source columns (qualified by prefix), in
// FTSSpec.Columns order; NULL otherwise.
func beforeImage(spec *Spec, prefix string) string {
	if spec.FTS == nil || spec.FTS.Mode != ModeExternal {
		return "NULL"
	}
	cols := make([]string, len(spec.FTS.Columns))
	for i, c := range spec.FTS.Columns {
		cols[i] = prefix + Quote(c.Source)
	}
	return "json_array(" + strings.Join(cols, ", ") + ")"
}

// CreateTriggers (re)creates spec's capture triggers: existing ones are
// dropped first, so that a changed spec gets triggers that match it. Run it
// in the transaction that saves the spec.
func CreateTriggers(ctx context.Context, db DB, spec *Spec) error {
	if err := DropTriggers(ctx, db, spec.Source); err != nil {
		return err
	}
	for _, q := range TriggerDDL(spec) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("outbox: create capture trigger on %s: %w", spec.Source, err)
		}
	}
	return nil
}

// DropTriggers drops the capture triggers of source, if any.
func DropTriggers(ctx context.Context, db DB, source string) error {
	for _, n := range TriggerNames(source) {
		if _, err := db.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+Quote(n)); err != nil {
			return fmt.Errorf("outbox: drop capture trigger %s: %w", n, err)
		}
	}
	return nil
}

// TriggersPresent reports whether all capture triggers of source exist.
// gorm's SQLite migrator recreates a table to alter a column, which drops
// its triggers; the plugin's migrator and the indexer re-create them.
func TriggersPresent(ctx context.Context, db DB, source string) (bool, error) {
	names := TriggerNames(source)
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?, ?, ?) AND tbl_name = ? COLLATE NOCASE`,
		names[0], names[1], names[2], names[3], source).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("outbox: look up capture triggers of %s: %w", source, err)
	}
	return n == len(names), nil
}

// RestoreTriggers re-creates the capture triggers of every registered table
// that exists and lost them (gorm's SQLite migrator, like any migration that
// recreates a table, drops its triggers), and returns those tables.
func RestoreTriggers(ctx context.Context, db DB) ([]string, error) {
	missing, err := MissingTriggers(ctx, db)
	if err != nil || len(missing) == 0 {
		return nil, err
	}
	var restored []string
	for _, src := range missing {
		sp, err := LoadSpec(ctx, db, src)
		if err != nil {
			return restored, err
		}
		if err := CreateTriggers(ctx, db, sp); err != nil {
			return restored, err
		}
		restored = append(restored, src)
	}
	return restored, nil
}

// MissingTriggers returns the registered tables that exist and lack some of
// their capture triggers, with one read of the schema (no registry JSON is
// parsed), so that callers can check often and write only when needed.
func MissingTriggers(ctx context.Context, db DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT r.source FROM oi_registry r
		WHERE EXISTS (SELECT 1 FROM sqlite_master t WHERE t.type = 'table' AND t.name = r.source COLLATE NOCASE)
		AND (SELECT count(*) FROM sqlite_master g WHERE g.type = 'trigger' AND g.name IN (
			'oi_' || r.source || '_ins', 'oi_' || r.source || '_upd', 'oi_' || r.source || '_key', 'oi_' || r.source || '_del')) < 4
		ORDER BY r.source`)
	if err != nil {
		return nil, fmt.Errorf("outbox: look up capture triggers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("outbox: look up capture triggers: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
