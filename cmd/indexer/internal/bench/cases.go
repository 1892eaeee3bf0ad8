package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/outboxindexer/outboxindexer/indexer"
)

// OursCreateThenDrain is the end-to-end figure of target 1: n single-row
// Creates through the plugin followed by one Drain. It returns the total
// seconds.
func OursCreateThenDrain(n int) Workload {
	return Workload{Name: "ours: n Creates + one Drain", Unit: "s", Run: func(ctx context.Context, dir string) (float64, error) {
		db, err := openIndexed(ctx, dir)
		if err != nil {
			return 0, err
		}
		defer Close(db)
		start := time.Now()
		if err := createEach(ctx, db, articles(n)); err != nil {
			return 0, err
		}
		ix, err := indexer.New(db)
		if err != nil {
			return 0, err
		}
		defer ix.Close()
		if got, err := ix.Drain(ctx); err != nil || got != n {
			return 0, fmt.Errorf("bench: drain applied %d of %d: %v", got, n, err)
		}
		return Since(start), nil
	}}
}

// SyncCreateTotal is SyncCreate reported as the total seconds of n creates.
func SyncCreateTotal(n int) Workload {
	w := SyncCreate(n)
	return Workload{Name: "synchronous: n creates (row + vec0 + FTS5 per tx)", Unit: "s", Run: func(ctx context.Context, dir string) (float64, error) {
		perRow, err := w.Run(ctx, dir)
		return perRow * float64(n) / 1e6, err
	}}
}

// CaptureCases returns the cases of targets 1, 2 and 3: n single-row writes,
// batch rows through CreateInBatches(500). Target 1 also reports its floor
// (any outbox row, written by hand with no plugin code, against the same
// baseline) and what the plugin costs above that floor.
func CaptureCases(n, batch int) []Case {
	return []Case{
		PairCase("1", fmt.Sprintf("capture: %d single-row Creates vs same-bytes gorm Create, interleaved every 50", n), StepOursCreate(), StepGormBlobCreate(), n, 50, "µs/row", 1.2),
		PairCase("1", fmt.Sprintf("floor: %d Creates + a hand-written outbox row (no plugin) vs same-bytes gorm Create", n), StepNaiveOutbox(false), StepGormBlobCreate(), n, 50, "µs/row", 0),
		PairCase("1", fmt.Sprintf("plugin: %d Creates with the plugin vs + a hand-written outbox row", n), StepOursCreate(), StepNaiveOutbox(false), n, 50, "µs/row", 0),
		PairCase("1", fmt.Sprintf("capture: %d single-row Creates vs synchronous design, interleaved every 50", n), StepOursCreate(), StepSyncCreate(), n, 50, "µs/row", 0.35),
		{ID: "1", Name: fmt.Sprintf("end to end: %d Creates + one Drain vs synchronous", n), Ours: OursCreateThenDrain(n), Baseline: SyncCreateTotal(n), Target: 0.5},
		PairCase("2", fmt.Sprintf("capture: CreateInBatches(500) of %d, interleaved every 1000", batch), StepOursCreateInBatches(500), StepGormBlobCreateInBatches(500), batch, 1000, "µs/row", 1.25),
		// Updates are cheap and each commits one page: 4n of them, so that
		// the WAL checkpoints (an fsync each ~1000 updates) average out.
		PairCase("3", fmt.Sprintf("update of a non-indexed column, %d updates, interleaved every 50", 4*n), StepOursUpdateCounter(), StepPlainUpdateCounter(), 4*n, 50, "µs/op", 1.05),
	}
}
