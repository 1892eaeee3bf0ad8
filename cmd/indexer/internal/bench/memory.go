package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
)

// MemoryOp is what a memory workload runs in the subprocess.
type MemoryOp string

const (
	// MemDrain is `indexer drain` of n pending insert events.
	MemDrain MemoryOp = "drain"
	// MemRebuild is `indexer rebuild` of n indexed rows.
	MemRebuild MemoryOp = "rebuild"
)

// PeakRSS is target 9: the peak resident set size (VmHWM, from the child's
// rusage) of the indexer binary running op on a database of n Article rows
// prepared in-process (n pending events for drain; drained first for
// rebuild). It returns MiB.
func PeakRSS(op MemoryOp, n int) Workload {
	return Workload{Name: fmt.Sprintf("peak RSS: indexer %s, %d rows", op, n), Unit: "MiB", Run: func(ctx context.Context, dir string) (float64, error) {
		bin, err := IndexerBinary(ctx)
		if err != nil {
			return 0, err
		}
		db, err := loadPending(ctx, dir, n)
		if err != nil {
			return 0, err
		}
		if op == MemRebuild {
			if err := drainAll(ctx, db, n); err != nil {
				Close(db)
				return 0, err
			}
		}
		Close(db)
		path := filepath.Join(dir, "bench.db")
		args := []string{string(op), "--db", path, "--progress", "off", "--log-level", "warn"}
		r, err := runIndexer(ctx, bin, true, args...)
		if err != nil {
			return 0, err
		}
		return float64(r.maxRSS) / (1 << 20), nil
	}}
}

// MemoryCases returns target 9's cases: peak RSS of drain and rebuild on
// large rows against the same on small rows. Memory must not grow with the
// row count beyond SQLite's page cache (a few MiB): the target is a ratio
// of 1.2.
func MemoryCases(small, large int) []Case {
	name := func(op MemoryOp) string {
		return "memory: indexer " + string(op) + " peak RSS, " + strconv.Itoa(large) + " vs " + strconv.Itoa(small) + " rows"
	}
	return []Case{
		{ID: "9", Name: name(MemDrain), Ours: PeakRSS(MemDrain, large), Baseline: PeakRSS(MemDrain, small), Target: 1.2},
		{ID: "9", Name: name(MemRebuild), Ours: PeakRSS(MemRebuild, large), Baseline: PeakRSS(MemRebuild, small), Target: 1.2},
	}
}
