package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// shadowSuffix matches the shadow tables of vec0 and FTS5 tables.
var shadowSuffix = regexp.MustCompile(`^(info|chunks|rowids|auxiliary|data|idx|docsize|content|config|vector_chunks[0-9]+|metadatachunks[0-9]+|metadatatext[0-9]+)$`)

// ShrinkBound is what a PrefetchShrink call read of a table's shadow
// tables: the rows of Table up to Rowid, which a ShrinkTable call given
// ShrinkUpTo deletes first. The zero ShrinkBound read nothing (the shadow
// tables were empty) and bounds nothing.
type ShrinkBound struct {
	Table string // the shadow table read ("": none had rows)
	Rowid int64  // the last rowid read
	Rows  int    // rows read
	Bytes int64  // their size (length of every column)
}

// Shrunk is what a ShrinkTable call did.
type Shrunk struct {
	Rows int64 // rows deleted
	Left bool  // rows may be left to delete
}

// ShrinkOption is a per-call option of ShrinkTable.
type ShrinkOption func(*shrinkConfig)

type shrinkConfig struct {
	upTo ShrinkBound
}

// ShrinkUpTo makes ShrinkTable delete no row of b.Table past b.Rowid: it
// returns, reporting rows left, once the rows b covers are gone. With a
// bound from PrefetchShrink, the call deletes only rows whose pages were
// just read.
func ShrinkUpTo(b ShrinkBound) ShrinkOption {
	return func(c *shrinkConfig) { c.upTo = b }
}

// shrinkable lists the shadow tables of the virtual table name that
// ShrinkTable empties, in the order it empties them.
func shrinkable(ctx context.Context, db DB, name string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ? ORDER BY rowid`, len(name)+1, name+"_")
	if err != nil {
		return nil, fmt.Errorf("outbox: shrink %s: %w", name, err)
	}
	defer rows.Close()
	var shadows []string
	for rows.Next() {
		var n, q string
		if err := rows.Scan(&n, &q); err != nil {
			return nil, fmt.Errorf("outbox: shrink %s: %w", name, err)
		}
		if shadowSuffix.MatchString(n[len(name)+1:]) && !strings.Contains(strings.ToUpper(q), "WITHOUT ROWID") && !strings.HasPrefix(strings.ToUpper(q), "CREATE VIRTUAL") {
			shadows = append(shadows, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: shrink %s: %w", name, err)
	}
	return shadows, nil
}

// PrefetchBudget bounds what one PrefetchShrink call reads.
type PrefetchBudget struct {
	Rows  int           // at most this many rows (at least one is read)
	Bytes int64         // stop once the rows read hold this many bytes (length of every column; 0: after the first row)
	Time  time.Duration // stop after the row that ends this long after the start (0: no limit)
}

// PrefetchShrink reads, and writes nothing, the rows the next ShrinkTable
// call on name deletes first: the first rows of the first of its shadow
// tables that has any, within budget (at least one row). Deleting a row
// whose value spills onto overflow pages reads every one of them (SQLite
// follows the chain to free it); a vec0 vector chunk of 1,024 384-d
// vectors is 375 such pages. Run outside the write lock, where a cold read
// delays nobody, the read leaves those pages in the OS cache for the
// delete that follows under the lock; pass the result to ShrinkTable with
// ShrinkUpTo so that it deletes no row this call did not read.
func PrefetchShrink(ctx context.Context, db DB, name string, budget PrefetchBudget) (ShrinkBound, error) {
	shadows, err := shrinkable(ctx, db, name)
	if err != nil {
		return ShrinkBound{}, err
	}
	start := time.Now()
	for _, s := range shadows {
		b, err := prefetchShadow(ctx, db, s, budget, start)
		if err != nil {
			return ShrinkBound{}, fmt.Errorf("outbox: prefetch %s: %w", s, err)
		}
		if b.Rows > 0 {
			return b, nil
		}
	}
	return ShrinkBound{}, nil
}

// prefetchShadow reads the first rows of the shadow table s within budget,
// whose time counts from start.
func prefetchShadow(ctx context.Context, db DB, s string, budget PrefetchBudget, start time.Time) (ShrinkBound, error) {
	var cols []string
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, s)
	if err != nil {
		return ShrinkBound{}, err
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return ShrinkBound{}, err
		}
		cols = append(cols, Quote(c))
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return ShrinkBound{}, err
	}
	if len(cols) == 0 {
		return ShrinkBound{}, nil
	}
	// Each row is read as it is stepped: substr needs the whole value, so
	// every overflow page of it is read (length() of a blob alone is
	// answered from the record header).
	sizes, loads := make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		sizes[i] = "coalesce(length(" + c + "), 0)"
		loads[i] = "coalesce(length(substr(" + c + ", -1)), 0)"
	}
	b := ShrinkBound{Table: s}
	rows, err = db.QueryContext(ctx, `SELECT rowid, `+strings.Join(sizes, " + ")+`, `+strings.Join(loads, " + ")+` FROM `+Quote(s)+` ORDER BY rowid LIMIT ?`, max(budget.Rows, 1))
	if err != nil {
		return ShrinkBound{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, n, loaded int64
		if err := rows.Scan(&id, &n, &loaded); err != nil {
			return ShrinkBound{}, err
		}
		b.Rowid, b.Rows, b.Bytes = id, b.Rows+1, b.Bytes+n
		if b.Bytes >= budget.Bytes || (budget.Time > 0 && time.Since(start) >= budget.Time) {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return ShrinkBound{}, err
	}
	if b.Rows == 0 {
		return ShrinkBound{}, nil
	}
	return b, nil
}

// ShrinkTable deletes rows of the shadow tables of the virtual table name
// (vec0, FTS5) for about budget, in batches that at most double, from one
// shadow table per call (it stops at the next table with rows), and
// reports whether any row may be left to delete: dropping a table frees
// every page it holds in one statement (about half a second for a vec0
// table of a million 384-d vectors), so an online rebuild empties the
// previous generation in short transactions first. The table must no
// longer be in use: its contents are destroyed. Shadow tables WITHOUT
// ROWID are left to DROP (they hold one small row per segment or
// setting). See PrefetchShrink and ShrinkUpTo for deleting only rows
// whose pages are in the OS cache.
func ShrinkTable(ctx context.Context, db DB, name string, budget time.Duration, opts ...ShrinkOption) (Shrunk, error) {
	var cfg shrinkConfig
	for _, o := range opts {
		o(&cfg)
	}
	shadows, err := shrinkable(ctx, db, name)
	if err != nil {
		return Shrunk{}, err
	}
	start := time.Now()
	var done Shrunk
	progressed := false
	for _, s := range shadows {
		if progressed {
			// Rows of another table cost what rows of this one did not
			// tell (a vec0 vector chunk is a thousand times a rowid):
			// the next call starts on it with one row.
			done.Left = true
			return done, nil
		}
		bounded := cfg.upTo.Table != "" && strings.EqualFold(s, cfg.upTo.Table)
		q := Quote(s)
		del := `DELETE FROM ` + q + ` WHERE rowid IN (SELECT rowid FROM ` + q + ` LIMIT ?)`
		if bounded {
			del = `DELETE FROM ` + q + ` WHERE rowid IN (SELECT rowid FROM ` + q + ` WHERE rowid <= ? LIMIT ?)`
		}
		// Rows are deleted one first, then as many as the time per row
		// measured so far lets fit in what is left of the budget (rows
		// range from a few bytes to 1.5 MB vec0 chunks).
		k := 1
		for {
			// The budget counts from the start, the listing above
			// included, but every call deletes at least one row: a slow
			// listing must not stall the shrink.
			if spent := time.Since(start); spent >= budget && progressed {
				done.Left = true
				return done, nil
			}
			t0 := time.Now()
			var res sql.Result
			var err error
			if bounded {
				res, err = db.ExecContext(ctx, del, cfg.upTo.Rowid, k)
			} else {
				res, err = db.ExecContext(ctx, del, k)
			}
			if err != nil {
				return done, fmt.Errorf("outbox: shrink %s: %w", s, err)
			}
			n, _ := res.RowsAffected()
			done.Rows += n
			if n > 0 {
				progressed = true
			}
			if n < int64(k) {
				if bounded {
					// The rows read are gone; those after them are for
					// the next call, after its own read.
					done.Left = true
					return done, nil
				}
				break
			}
			done.Left = true
			perRow := time.Since(t0) / time.Duration(n)
			rest := budget - time.Since(start)
			// At most twice the last batch: rows further on can be much
			// larger than the ones timed (a 1M-row rebuild's drop held the
			// lock 0.5-0.8 s when the estimate of one small row sized the
			// next batch).
			k = int(min(max(int64(rest/max(perRow, time.Microsecond)), 1), int64(2*k), 4096))
		}
	}
	return done, nil
}
