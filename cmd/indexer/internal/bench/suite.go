package bench

import (
	"fmt"
	"time"
)

// ApplySuite returns the apply-side cases of issue 7 (targets 4–12) in
// report order. Quick sizes finish in a few minutes on 2 cores; full
// sizes are the (100k rows, 30 s of lag per rate) and take much
// longer. lag overrides the lag duration when positive. Call
// CloseFixtures, RemoveBinary and RemoveCgoEngine after running them.
func ApplySuite(full bool, lag time.Duration) []Case {
	apply, storage, small, large, queryQ, engineN := 20000, 1000, 2000, 20000, 30, 5000
	querySizes := []int{20000}
	lagDur := 10 * time.Second
	if full {
		apply, storage, small, large, engineN = 100000, 10000, 10000, 100000, 20000
		querySizes = []int{20000, 100000}
		lagDur = 30 * time.Second
	}
	if lag > 0 {
		lagDur = lag
	}
	var cs []Case
	cs = append(cs, ApplyCases(apply)...)
	cs = append(cs, LagCases(200, lagDur)...)
	cs = append(cs, LagCases(1000, lagDur)...)
	for _, n := range querySizes {
		q := queryQ
		if n >= 100000 {
			q = 10 // a KNN over 100k vectors takes ~0.1 s
		}
		cs = append(cs, QueryCases(n, q)...)
	}
	cs = append(cs, MemoryCases(small, large)...)
	cs = append(cs, StorageCases(storage)...)
	cs = append(cs, StartupCases()...)
	cs = append(cs, EngineCases(engineN)...)
	return cs
}

// DrainScaleCases returns the drain figures of issue 16 at n rows (e.g. a
// million): target 4's Drain of n pending inserts against the raw vec0 +
// FTS5 limit on the same rows, and target 9's peak RSS of `indexer drain`
// on n rows against the same on n/10 (memory must stay flat).
func DrainScaleCases(n int) []Case {
	small := max(n/10, 1)
	return []Case{
		{ID: "4", Name: fmt.Sprintf("apply: Drain of %d pending inserts (default batch)", n), Ours: OursDrain(n, 0), Baseline: RawIndex(n, RawBatch), Direction: HigherIsBetter, Target: 0.8},
		{ID: "9", Name: fmt.Sprintf("memory: indexer drain peak RSS, %d vs %d rows", n, small), Ours: PeakRSS(MemDrain, n), Baseline: PeakRSS(MemDrain, small), Target: 1.2},
	}
}
