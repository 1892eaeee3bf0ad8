package ftssink

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
)

var (
	_ outbox.Copier = (*Table)(nil)
	_ outbox.Merger = (*Table)(nil)
)

// FTS5 merge settings.
const (
	// liveAutomerge turns FTS5's automatic merges off on a live sidecar:
	// FTS5 would merge inside the commit of whichever write crosses its
	// threshold (64 leaves written, times the number of levels), holding
	// the write lock for as long as the merge takes; on a 1M-row index that
	// was 23% of the application's CPU and commits of one event that held
	// the lock for up to 0.9 s. The indexer merges live sidecars itself,
	// in pieces it sizes to a time (Merge, Structure).
	liveAutomerge = 0
	// liveCrisismerge is a backstop: FTS5 merges a whole level inside one
	// commit once it holds this many segments. The indexer merges long
	// before (at 16 it puts merging before applying), so this happens only
	// when sidecars are written without an indexer running.
	liveCrisismerge = 64
	// bulkCrisismerge keeps FTS5 from merging a whole level of segments
	// inside one transaction during a bulk build (a "crisis merge" when a
	// level reaches 16 segments, which takes tens of ms on a large index).
	// Automatic merges stay on: after each transaction FTS5 does merge
	// work in proportion to what the transaction wrote, so every step of
	// the build pays for its own merging, and Merge finishes the rest.
	bulkCrisismerge = 1000
	// bulkAutomerge merges a level once it has 16 segments instead of 4:
	// each document is rewritten fewer times while the index is built
	// (15% less time for an online rebuild of 30k rows), and the merge
	// phase of the rebuild then merges the levels down in steps.
	bulkAutomerge = 16

	// buildCrisismerge and buildHashSize are the settings of a build that
	// is merged into one segment once finished (Build): no automatic
	// merges, a crisis merge only one segment short of FTS5's limit of
	// 2,000 (the builder merges long before; see indexer's side copy),
	// and a buffer of pending terms ('hashsize', FTS5's default 1 MB)
	// that holds all a build step writes, so that each step writes one
	// segment. Each document is then written twice in all (its segment,
	// the final merge) instead of once per level it climbs: 1M documents
	// of the benchmark in 2,000-document transactions were indexed and
	// merged into one segment in 83 s against 137 s with FTS5's defaults
	// (automerge 4, crisismerge 16, hashsize 1 MB).
	buildCrisismerge = 1999
	buildHashSize    = 32 << 20
	// liveHashSize is FTS5's default buffer of pending terms, which the
	// live settings restore after a build.
	liveHashSize = 1 << 20

	// livePageSize is the leaf page size ('pgsz') of a live sidecar, in
	// bytes: a quarter of FTS5's default. FTS5's automatic merges work in
	// units of 64 leaves written (times the number of levels), so the
	// smaller the leaves, the shorter the one transaction in 64 that does
	// a unit of merging while every other writer of the file waits (on a
	// 100k-document index: p99 of single-document transactions 25 -> 10
	// ms, max 43-50 -> 24 ms; the total write time and MATCH's unchanged
	// within noise).
	livePageSize = 1000
	// fillPageSize is FTS5's default page size, for bulk fills (a rebuild,
	// the build of a new generation): larger leaves are written faster
	// (FTS5's 'rebuild' of 100k documents takes 5-12% longer with
	// livePageSize) and no application write waits on those merges.
	fillPageSize = 4050
)

// setPageSize sets the FTS5 table name's leaf page size for the leaves it
// writes from now on (segments already written keep theirs).
func setPageSize(ctx context.Context, db outbox.DB, name string, bytes int) error {
	return setting(ctx, db, name, "pgsz", int64(bytes))
}

// setting sets the FTS5 table name's configuration option k to v (stored
// in its %_config table).
func setting(ctx context.Context, db outbox.DB, name, k string, v int64) error {
	tbl := outbox.Quote(name)
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (%s, rank) VALUES (?, ?)", tbl, tbl), k, v); err != nil {
		return fmt.Errorf("ftssink: %s: set %s: %w", name, k, err)
	}
	return nil
}

// Create creates the FTS5 table this sink names (its generation), empty,
// if it does not exist.
func (t *Table) Create(ctx context.Context, db outbox.DB) error {
	q, err := CreateSQL(t.spec)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("ftssink: create %s: %w", t.Name(), err)
	}
	// No setting here (Bulk and Fill set them): the move of an online
	// rebuild creates the table and then copies its shadow tables
	// underneath it, in the same transaction, and FTS5 would go on using
	// the structure it read to store a setting.
	return nil
}

// CopyRange indexes the current text of the source rows in r (soft-deleted
// ones flagged), in every mode: an external-content table is given the
// values to index, like its 'rebuild' reads them. Rows of text-key tables
// get their rowid from oi_keymap (assigned here if missing). In external
// mode, keys with dead letters are left out: their parked events carry
// before-images of text older than the source's, and they are indexed
// when the dead letters are retried (a key that is not indexed is simply
// inserted).
func (t *Table) CopyRange(ctx context.Context, tx outbox.DB, r outbox.KeyRange) (int64, error) {
	spec := t.spec
	f := spec.FTS
	src, key := outbox.Quote(spec.Source), outbox.Quote(spec.Key)
	rowid, join := "s."+key, ""
	var pre []any
	if spec.KeyType == outbox.KeyText {
		q := `INSERT OR IGNORE INTO oi_keymap (tbl, key) SELECT ?, s.` + key + ` FROM ` + src + ` s WHERE ` + r.Cond
		if _, err := tx.ExecContext(ctx, q, append([]any{spec.Source}, r.Args...)...); err != nil {
			return 0, fmt.Errorf("ftssink: copy into %s: key map: %w", t.Name(), err)
		}
		rowid = "m.rid"
		join = " JOIN oi_keymap m ON m.tbl = ? AND m.key = s." + key
		pre = []any{spec.Source}
	}
	names := []string{"rowid"}
	exprs := []string{rowid}
	for _, c := range f.Columns {
		names = append(names, outbox.Quote(c.Name))
		exprs = append(exprs, "s."+outbox.Quote(c.Source))
	}
	if spec.SoftDelete != "" {
		if f.Mode == outbox.ModeExternal {
			names = append(names, outbox.Quote(spec.SoftDelete))
			exprs = append(exprs, "s."+outbox.Quote(spec.SoftDelete))
		} else {
			names = append(names, outbox.DeletedColumn)
			exprs = append(exprs, fmt.Sprintf("(s.%s IS NOT NULL)", outbox.Quote(spec.SoftDelete)))
		}
	}
	cond := "(" + r.Cond + ")"
	args := append(pre, r.Args...)
	if f.Mode == outbox.ModeExternal {
		cond += " AND s." + key + " NOT IN (SELECT key FROM oi_deadletters WHERE tbl = ?)"
		args = append(args, spec.Source)
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s s%s WHERE %s", outbox.Quote(t.Name()), strings.Join(names, ", "), strings.Join(exprs, ", "), src, join, cond)
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("ftssink: copy into %s: %w", t.Name(), err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Bulk sets the table up for a build in many short transactions (on): no
// crisis merges, so that no transaction merges a whole level of segments;
// the incremental automatic merges stay, in proportion to what each
// transaction writes, on levels of 16 segments; leaves of FTS5's default
// size (Fill). Off sets the live settings: no automatic merges (the
// indexer merges live sidecars in steps of its own; see liveAutomerge), a
// crisis merge only as a backstop, and the live page size. The settings
// are stored in the table.
func (t *Table) Bulk(ctx context.Context, db outbox.DB, on bool) error {
	if !on {
		return liveSettings(ctx, db, t.Name())
	}
	if err := t.Fill(ctx, db, true); err != nil {
		return err
	}
	if err := setting(ctx, db, t.Name(), "automerge", bulkAutomerge); err != nil {
		return err
	}
	return setting(ctx, db, t.Name(), "crisismerge", bulkCrisismerge)
}

// Build sets the table up for a build that nobody waits on (the side file
// of an online rebuild, whose transactions hold no lock a writer of the
// database waits for) and that is merged into one segment once finished
// (Merge with pages < 0): leaves of FTS5's default size (Fill), no
// automatic merges, no crisis merge short of FTS5's segment limit, and a
// buffer of pending terms large enough for each transaction to write one
// segment. The builder keeps the number of segments down itself (Structure
// counts them). Bulk(false) restores the live settings.
func (t *Table) Build(ctx context.Context, db outbox.DB) error {
	if err := t.Fill(ctx, db, true); err != nil {
		return err
	}
	for _, kv := range []struct {
		k string
		v int64
	}{{"automerge", 0}, {"crisismerge", buildCrisismerge}, {"hashsize", buildHashSize}} {
		if err := setting(ctx, db, t.Name(), kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// Fill sets the size of the leaves the table writes from now on: FTS5's
// default for a bulk fill (on), the smaller live page size (off) that
// keeps each of FTS5's automatic merge steps short for the writers that
// wait on it. The package's Create gives a table the live size.
func (t *Table) Fill(ctx context.Context, db outbox.DB, on bool) error {
	if on {
		return setPageSize(ctx, db, t.Name(), fillPageSize)
	}
	return setPageSize(ctx, db, t.Name(), livePageSize)
}

// Merge does about pages pages of FTS5 merge work on the table (the
// 'merge' command) and returns how many rows of its shadow tables it
// wrote (leaves written and deleted, index entries), 0 when it found no
// work: with pages > 0 it merges levels that hold at least 'usermerge'
// segments, like automerge would have; with pages < 0 it merges every
// segment into one, -pages pages at a time (FTS5's 'optimize' in pieces),
// and finds no work once one is left. FTS5 checks the budget between
// terms, so a term whose list of documents spans many pages can take it
// past pages.
func (t *Table) Merge(ctx context.Context, db outbox.DB, pages int) (int64, error) {
	var before, after int64
	if err := db.QueryRowContext(ctx, "SELECT total_changes()").Scan(&before); err != nil {
		return 0, fmt.Errorf("ftssink: merge %s: %w", t.Name(), err)
	}
	tbl := outbox.Quote(t.Name())
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (%s, rank) VALUES ('merge', ?)", tbl, tbl), pages); err != nil {
		return 0, fmt.Errorf("ftssink: merge %s: %w", t.Name(), err)
	}
	if err := db.QueryRowContext(ctx, "SELECT total_changes()").Scan(&after); err != nil {
		return 0, fmt.Errorf("ftssink: merge %s: %w", t.Name(), err)
	}
	// FTS5 documents that a 'merge' that did no work changes fewer than 2
	// rows (the statement itself counts one).
	if after-before < 2 {
		return 0, nil
	}
	return after - before - 1, nil
}
