package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Online rebuilds (driven by the indexer) build the next generation of a
// source table's sidecars beside the live ones, in short transactions, and
// swap it in with one short transaction. Their progress lives in
// oi_rebuild, one row per source table, so that a rebuild interrupted by a
// crash, a lost lease or a shutdown continues where it stopped. The
// generation being built is never named by the registry before the swap,
// so queries never see it.

// Phases of an online rebuild, in order.
const (
	// PhaseScan folds the retained log into the vector-state table (the
	// newest event of each key that sets its vector), in id ranges.
	PhaseScan = "scan"
	// PhaseCopy fills the new sidecars from the source table and the
	// vector-state table, by key ranges; events of keys already copied are
	// applied to the new generation as well as to the live one.
	PhaseCopy = "copy"
	// PhaseMerge merges the new FTS5 index's segments in small steps.
	PhaseMerge = "merge"
	// PhaseRequeue follows the swap of a table with derived vectors (tag
	// from=): every row is queued for embedding, by key ranges (After is
	// the last key queued), so that the embedding stage re-embeds what
	// the new spec or model changed and keeps the rest at no cost. The
	// previous generation (Old) is dropped after it.
	PhaseRequeue = "requeue"
	// PhaseDrop drops the previous generation, after the swap.
	PhaseDrop = "drop"

	// The phases of a rebuild built in a side file (see SideFile), which
	// replace PhaseScan, PhaseCopy and PhaseMerge for tables with integer
	// keys in a database file.

	// PhaseSide builds the new generation in the side file, by key
	// ranges, each read from the main file at one snapshot whose log head
	// the side file records with the range; the main file's write lock is
	// not taken. Scanned is the log head when the rebuild started:
	// compaction keeps every event above it until the swap.
	PhaseSide = "side"
	// PhaseMove copies the finished tables of the side file into the main
	// file in short transactions (After is the copy's position).
	PhaseMove = "move"
	// PhaseCatchUp applies to the new generation, in short transactions,
	// the events logged after the snapshot each key was copied at
	// (Scanned is the position in the log); the transaction that reaches
	// the head swaps.
	PhaseCatchUp = "catchup"
)

// RebuildState is the row of oi_rebuild of one source table.
type RebuildState struct {
	Table string
	// Spec is the registry spec being built: the live spec with the
	// generations (VecSpec.Gen, FTSSpec.Gen) of the new tables.
	Spec *Spec
	// Phase is one of PhaseSide, PhaseMove, PhaseCatchUp (a rebuild in a
	// side file) or PhaseScan, PhaseCopy, PhaseMerge (in the main file),
	// then PhaseRequeue (derived vectors only) and PhaseDrop.
	Phase string
	// After is the last source key copied (int64 or string), nil before
	// the first range; in PhaseMove, the move's position.
	After any
	// Scanned is the log position up to which the vector-state table
	// reflects the log; in a side file's rebuild, the position its
	// catch-up has applied the log to (the log head at the start until
	// then).
	Scanned int64
	// Done and Total count source rows copied and to copy (Total is the
	// source row count when the copy started, an estimate).
	Done, Total int64
	StartedAt   time.Time
	UpdatedAt   time.Time
	// Old lists the tables of the previous generation still to drop
	// (PhaseRequeue and PhaseDrop: after the swap).
	Old []string
	// SwappedAt is when the new generation was swapped in (PhaseRequeue)
	// or when the requeue ended (PhaseDrop after PhaseRequeue). Stored in
	// a column with no use any more after the swap: scanned in
	// PhaseRequeue, after in PhaseDrop.
	SwappedAt time.Time
	// Driver is the indexer (holder name) that committed the last step:
	// background drivers leave a rebuild to a live foreground one (see
	// RebuildDue).
	Driver string
}

// VecStatesTable returns the name of the table an online rebuild of
// source keeps the newest vector-state event of each key and vector field
// in: (field, key, id), field "" for the first vector field.
func VecStatesTable(source string) string { return "oi_rebuild_vec_" + source }

// LoadRebuild returns the online rebuild of source, if one is in progress.
func LoadRebuild(ctx context.Context, db DB, source string) (*RebuildState, bool, error) {
	rs, err := loadRebuilds(ctx, db, ` WHERE tbl = ?`, source)
	if err != nil || len(rs) == 0 {
		return nil, false, err
	}
	return rs[0], true, nil
}

// Rebuilds returns every online rebuild in progress, oldest first.
func Rebuilds(ctx context.Context, db DB) ([]*RebuildState, error) {
	return loadRebuilds(ctx, db, ` ORDER BY started_at, tbl`)
}

// RebuildPending reports whether any online rebuild is in progress, with
// one cheap read.
func RebuildPending(ctx context.Context, db DB) (bool, error) {
	return RebuildDue(ctx, db, "", 0)
}

// RebuildDue reports, with one cheap read, whether an online rebuild is in
// progress that holder may drive in the background: one whose last step
// holder committed itself, or that nobody stepped for idle (its driver
// stopped). With idle 0 any rebuild is due.
func RebuildDue(ctx context.Context, db DB, holder string, idle time.Duration) (bool, error) {
	var n int
	q, args := `SELECT EXISTS (SELECT 1 FROM oi_rebuild)`, []any(nil)
	if idle > 0 {
		q = `SELECT EXISTS (SELECT 1 FROM oi_rebuild WHERE driver IS NULL OR driver = ? OR updated_at < ?)`
		args = []any{holder, time.Now().Add(-idle).UnixNano()}
	}
	if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return false, nil
		}
		return false, fmt.Errorf("outbox: read rebuilds: %w", err)
	}
	return n == 1, nil
}

func loadRebuilds(ctx context.Context, db DB, tail string, args ...any) ([]*RebuildState, error) {
	rows, err := db.QueryContext(ctx, `SELECT tbl, spec, phase, after, scanned, done, total, started_at, updated_at, old, coalesce(driver, '') FROM oi_rebuild`+tail, args...)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, fmt.Errorf("outbox: read rebuilds: %w", err)
	}
	defer rows.Close()
	var out []*RebuildState
	for rows.Next() {
		var (
			r          RebuildState
			raw        string
			old        sql.NullString
			start, upd int64
		)
		if err := rows.Scan(&r.Table, &raw, &r.Phase, &r.After, &r.Scanned, &r.Done, &r.Total, &start, &upd, &old, &r.Driver); err != nil {
			return nil, fmt.Errorf("outbox: read rebuilds: %w", err)
		}
		if b, ok := r.After.([]byte); ok {
			r.After = string(b)
		}
		if at, ok := r.After.(int64); ok && r.Phase == PhaseDrop {
			r.SwappedAt, r.After = time.Unix(0, at), nil
		}
		if r.Phase == PhaseRequeue {
			r.SwappedAt, r.Scanned = time.Unix(0, r.Scanned), 0
		}
		r.StartedAt, r.UpdatedAt = time.Unix(0, start), time.Unix(0, upd)
		spec, err := ParseSpec(raw)
		if err != nil {
			return nil, fmt.Errorf("outbox: rebuild of %s: %w", r.Table, err)
		}
		r.Spec = spec
		if old.Valid && old.String != "" {
			if err := json.Unmarshal([]byte(old.String), &r.Old); err != nil {
				return nil, fmt.Errorf("outbox: rebuild of %s: old tables: %w", r.Table, err)
			}
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// SaveRebuild inserts or updates the row of r.Table, setting UpdatedAt
// (and StartedAt when zero) to now.
func SaveRebuild(ctx context.Context, db DB, r *RebuildState) error {
	b, err := json.Marshal(r.Spec)
	if err != nil {
		return fmt.Errorf("outbox: save rebuild of %s: %w", r.Table, err)
	}
	now := time.Now()
	if r.StartedAt.IsZero() {
		r.StartedAt = now
	}
	r.UpdatedAt = now
	var old any
	if len(r.Old) > 0 {
		o, _ := json.Marshal(r.Old)
		old = string(o)
	}
	var driver any
	if r.Driver != "" {
		driver = r.Driver
	}
	after, scanned := r.After, r.Scanned
	switch r.Phase {
	case PhaseDrop:
		after = r.SwappedAt.UnixNano()
	case PhaseRequeue:
		scanned = r.SwappedAt.UnixNano()
	}
	_, err = db.ExecContext(ctx, `INSERT INTO oi_rebuild (tbl, spec, phase, after, scanned, done, total, started_at, updated_at, old, driver)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tbl) DO UPDATE SET spec = excluded.spec, phase = excluded.phase, after = excluded.after,
			scanned = excluded.scanned, done = excluded.done, total = excluded.total, updated_at = excluded.updated_at, old = excluded.old,
			driver = excluded.driver`,
		r.Table, string(b), r.Phase, after, scanned, r.Done, r.Total, r.StartedAt.UnixNano(), r.UpdatedAt.UnixNano(), old, driver)
	if err != nil {
		return fmt.Errorf("outbox: save rebuild of %s: %w", r.Table, err)
	}
	return nil
}

// Swapped reports whether r's new generation is the live one already
// (PhaseRequeue, PhaseDrop): only the previous generation, r.Old, is left
// to drop.
func (r *RebuildState) Swapped() bool {
	return r.Phase == PhaseRequeue || r.Phase == PhaseDrop
}

// BuildingTables returns the sidecar tables r builds (before the swap) or
// still has to drop (after it), and the vector-state table.
func (r *RebuildState) BuildingTables() []string {
	var out []string
	if r.Swapped() {
		out = append(out, r.Old...)
	} else {
		for _, v := range r.Spec.VecSpecs() {
			out = append(out, v.Live())
		}
		if r.Spec.FTS != nil {
			out = append(out, r.Spec.FTS.Live())
		}
	}
	return append(out, VecStatesTable(r.Table))
}

// DiscardRebuild abandons the online rebuild of source, if any: it drops
// the tables it was building (or, after its swap, the previous generation
// it still had to drop), its vector-state table and its side file, and
// deletes its row. The live sidecars are untouched. DeleteSpec calls it, so that dropping a
// table during a rebuild leaves nothing behind. Run it in a write
// transaction.
func DiscardRebuild(ctx context.Context, db DB, source string) error {
	r, ok, loadErr := LoadRebuild(ctx, db, source)
	if loadErr == nil && !ok {
		return nil
	}
	// An unreadable row still has to go: drop what can be named.
	tables := []string{VecStatesTable(source)}
	if loadErr == nil {
		tables = r.BuildingTables()
	}
	if err := DropTables(ctx, db, tables...); err != nil {
		return errors.Join(loadErr, err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM oi_rebuild WHERE tbl = ?`, source); err != nil {
		return errors.Join(loadErr, fmt.Errorf("outbox: discard rebuild of %s: %w", source, err))
	}
	if err := DeleteKeyFloors(ctx, db, NextFloors(source)); err != nil {
		return err
	}
	// Its side file goes too, at once: should the transaction roll back,
	// the rebuild builds a new one.
	f, err := MainFile(ctx, db)
	if err != nil {
		return err
	}
	return RemoveSideFiles(f, source, "")
}

// DropTables drops the named tables (virtual ones with their shadow
// tables) that exist. A contentless FTS5 table of some SQLite versions
// leaves its "_content" shadow table behind on DROP; it is dropped too
// when the table itself was there.
func DropTables(ctx context.Context, db DB, names ...string) error {
	for _, n := range names {
		var exists int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, n).Scan(&exists); err != nil {
			return fmt.Errorf("outbox: drop %s: %w", n, err)
		}
		if exists == 0 {
			continue
		}
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+Quote(n)); err != nil {
			return fmt.Errorf("outbox: drop %s: %w", n, err)
		}
		var leftover int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, n+"_content").Scan(&leftover); err != nil {
			return fmt.Errorf("outbox: drop %s: %w", n, err)
		}
		if leftover > 0 {
			if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+Quote(n+"_content")); err != nil {
				return fmt.Errorf("outbox: drop %s: %w", n, err)
			}
		}
	}
	return nil
}

// SwapSpec records spec (the same sidecars as the registry entry, with the
// generations an online rebuild built) as the registry entry of
// spec.Source: from the commit on, queries and the applier use the new
// tables. It does not touch the capture triggers, which do not depend on
// generations.
func SwapSpec(ctx context.Context, db DB, spec *Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("outbox: encode spec of %s: %w", spec.Source, err)
	}
	res, err := db.ExecContext(ctx, `UPDATE oi_registry SET spec = ?, updated_at = ? WHERE source = ?`, string(b), time.Now().UnixNano(), spec.Source)
	if err != nil {
		return fmt.Errorf("outbox: swap spec of %s: %w", spec.Source, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: %s", ErrNotRegistered, spec.Source)
	}
	return nil
}

// NextGeneration returns a copy of spec whose sidecars all have the next
// generation: one above the highest generation spec uses.
func NextGeneration(spec *Spec) *Spec {
	c := *spec
	gen := 0
	for _, v := range spec.VecSpecs() {
		gen = max(gen, v.Gen)
	}
	if spec.FTS != nil {
		gen = max(gen, spec.FTS.Gen)
	}
	gen++
	if spec.Vec != nil {
		v := *spec.Vec
		v.Gen = gen
		c.Vec = &v
		c.MoreVecs = append([]VecSpec(nil), spec.MoreVecs...)
		for i := range c.MoreVecs {
			c.MoreVecs[i].Gen = gen
		}
	}
	if spec.FTS != nil {
		f := *spec.FTS
		f.Gen = gen
		c.FTS = &f
	}
	return &c
}

// LiveTable returns the physical name of the sidecar table that the
// registry calls table (a VecSpec.Table or FTSSpec.Table): its live
// generation (see GenName). A name no registry entry uses is returned
// unchanged. It is meant for tools and tests that read sidecars with
// their own SQL; the query builders of vecsink and ftssink resolve it
// themselves.
func LiveTable(ctx context.Context, db DB, table string) (string, error) {
	specs, _, err := LoadSpecs(ctx, db)
	if err != nil {
		return "", err
	}
	for _, s := range specs {
		for _, v := range s.VecSpecs() {
			if strings.EqualFold(v.Table, table) {
				return v.Live(), nil
			}
		}
		if s.FTS != nil && strings.EqualFold(s.FTS.Table, table) {
			return s.FTS.Live(), nil
		}
	}
	return table, nil
}
