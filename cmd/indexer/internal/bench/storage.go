package bench

import (
	"context"
	"fmt"
	"os"

	"github.com/outboxindexer/outboxindexer/indexer"
	"gorm.io/gorm"
)

// Storage (issue 7, target 10): how many bytes the outbox keeps per live
// row once applied events are compacted, right after a load and after 10
// updates per row (half of them writing a new vector). The database has no
// dbstat, so the figure is physical: oi_events (which has no index besides
// its rowid) is copied into a fresh attached database whose page count is
// measured. The floor is the same measurement of a table holding only each
// row's key and vector, which a rebuild needs and nothing else stores.

// StorageUpdates is the number of updates per row of the storage workload.
const StorageUpdates = 10

// tableBytes copies the rows of query (a SELECT of the given column list)
// into a new table of a fresh database file attached as "oi_measure", with
// index (when not empty) on it, and returns the bytes its pages occupy
// beyond an empty database.
func tableBytes(ctx context.Context, db *gorm.DB, dir, query, index string) (int64, error) {
	// A fresh file per call: the address of a local that named it before
	// could be reused by a later call, which then found its table there.
	f, err := os.CreateTemp(dir, "measure-*.db")
	if err != nil {
		return 0, err
	}
	path := f.Name()
	if err := f.Close(); err != nil {
		return 0, err
	}
	var out int64
	err = db.Connection(func(c *gorm.DB) error {
		c = c.WithContext(ctx)
		if err := c.Exec(`ATTACH DATABASE ? AS oi_measure`, path).Error; err != nil {
			return err
		}
		defer c.Exec(`DETACH DATABASE oi_measure`)
		var before int64
		if err := c.Raw(`SELECT page_count FROM pragma_page_count('oi_measure')`).Scan(&before).Error; err != nil {
			return err
		}
		stmts := []string{`CREATE TABLE oi_measure.t AS ` + query}
		if index != "" {
			stmts = append(stmts, `CREATE INDEX oi_measure.t_i ON t (`+index+`)`)
		}
		for _, q := range stmts {
			if err := c.Exec(q).Error; err != nil {
				return fmt.Errorf("bench: %s: %w", q, err)
			}
		}
		var pages, size int64
		if err := c.Raw(`SELECT page_count FROM pragma_page_count('oi_measure')`).Scan(&pages).Error; err != nil {
			return err
		}
		if err := c.Raw(`SELECT page_size FROM pragma_page_size('oi_measure')`).Scan(&size).Error; err != nil {
			return err
		}
		out = (pages - max(before, 1)) * size
		return nil
	})
	return out, err
}

func outboxBytes(ctx context.Context, db *gorm.DB, dir string) (int64, error) {
	return tableBytes(ctx, db, dir, `SELECT id, tbl, key, op, vec, old, at FROM main.oi_events`, "")
}

// storageRun loads n Articles, drains (which compacts), measures, then
// updates every row StorageUpdates times (title only on even rounds, title
// and vector on odd ones), draining after each round, and measures again.
func storageRun(ctx context.Context, dir string, n int) (map[string]float64, error) {
	db, err := loadPending(ctx, dir, n)
	if err != nil {
		return nil, err
	}
	defer Close(db)
	ix, err := indexer.New(db)
	if err != nil {
		return nil, err
	}
	defer ix.Close()
	if _, err := ix.Drain(ctx); err != nil {
		return nil, err
	}
	res := map[string]float64{}
	loaded, err := outboxBytes(ctx, db, dir)
	if err != nil {
		return nil, err
	}
	res["loaded"] = float64(loaded) / float64(n)
	floor, err := tableBytes(ctx, db, dir, `SELECT e.key AS id, e.vec FROM main.oi_events e`, "")
	if err != nil {
		return nil, err
	}
	res["floor"] = float64(floor) / float64(n)
	docs := Docs(n)
	for round := range StorageUpdates {
		for i := range n {
			d := docs[(i+round+1)%n]
			m := map[string]any{"title": d.Title}
			if round%2 == 1 {
				m["embedding"] = d.Vec
			}
			if err := db.WithContext(ctx).Model(&Article{ID: uint(i + 1)}).Updates(m).Error; err != nil {
				return nil, err
			}
		}
		if _, err := ix.Drain(ctx); err != nil {
			return nil, err
		}
	}
	updated, err := outboxBytes(ctx, db, dir)
	if err != nil {
		return nil, err
	}
	res["updated"] = float64(updated) / float64(n)
	var events int64
	if err := db.WithContext(ctx).Raw(`SELECT count(*) FROM oi_events`).Scan(&events).Error; err != nil {
		return nil, err
	}
	res["events"] = float64(events) / float64(n)
	return res, nil
}

// StorageCases returns target 10's cases on n rows: outbox bytes per live
// row after a load against the floor (key + vector), after 10 updates per
// row against after the load (the log must not grow with updates), and
// retained events per live key (ideal: 1).
func StorageCases(n int) []Case {
	e := newExperiment(func(ctx context.Context, dir string) (map[string]float64, error) {
		return storageRun(ctx, dir, n)
	})
	return []Case{
		{ID: "10", Name: fmt.Sprintf("storage: outbox bytes/row after load of %d rows + Drain, vs key+vector floor", n),
			Ours: e.figure("ours: oi_events, compacted", "B/row", "loaded"), Baseline: e.figure("floor: key + vector table", "B/row", "floor")},
		{ID: "10", Name: fmt.Sprintf("storage: outbox bytes/row after %d updates per row, vs after load", StorageUpdates),
			Ours: e.figure("ours: after updates + Drain", "B/row", "updated"), Baseline: e.figure("ours: after load + Drain", "B/row", "loaded"), Target: 1.1},
		{ID: "10", Name: fmt.Sprintf("storage: retained events per live key after %d updates per row", StorageUpdates),
			Ours: e.figure("ours: events per key", "events/key", "events"), Baseline: Constant("ideal: 1", "events/key", 1), Target: 1.05},
	}
}
