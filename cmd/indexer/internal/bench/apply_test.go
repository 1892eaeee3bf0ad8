package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The apply, query, storage and lag workloads on tiny sizes: they run
// against real SQLite files and return sane figures (a test of
// correctness, not of speed).
func TestApplyWorkloadsRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, w := range []Workload{OursDrain(60, 0), OursDrain(60, 25), OursRebuild(60, true), OursRebuild(60, false), OursBulkLoad(60, BulkDrain), OursBulkLoad(60, BulkRebuild), OursBulkLoad(60, BulkRebuildOnline), BulkLoadLimit(60),
		OursDrainCPU(60, 0), RawIndexCPU(60, 25), OursRebuildCPU(60, true), RawRebuildCPU(60)} {
		v, err := w.Run(ctx, t.TempDir())
		require.NoError(t, err, w.Name)
		require.Greater(t, v, 0.0, w.Name)
	}
}

func TestApplyCasesRun(t *testing.T) {
	t.Parallel()
	r := Runner{Reps: 1, TempDir: func() (string, error) { return t.TempDir(), nil }}
	res := r.Run(context.Background(), ApplyCases(40))
	require.Len(t, res, 9)
	for _, x := range res {
		require.NoError(t, x.Err, x.Name)
		require.Greater(t, x.Ratio, 0.0, x.Name)
	}
}

// benchApply runs ours and base on b.N rows each, alternating which side
// goes first, and reports both figures and their ratio. Use e.g.
// -benchtime=5000x -count=5.
var applyOrder int

func benchApply(b *testing.B, ours, base Workload) {
	ctx := context.Background()
	run := func(w Workload) float64 {
		v, err := w.Run(ctx, b.TempDir())
		require.NoError(b, err, w.Name)
		return v
	}
	applyOrder++
	var o, bl float64
	if applyOrder%2 == 1 {
		o, bl = run(ours), run(base)
	} else {
		bl, o = run(base), run(ours)
	}
	b.ReportMetric(o, "ours-"+ours.Unit)
	b.ReportMetric(bl, "base-"+base.Unit)
	b.ReportMetric(o/bl, "ratio")
	b.ReportMetric(0, "ns/op")
}

func benchN(b *testing.B) int { return max(b.N, 100) }

// Target 4: Drain of b.N pending inserts against raw vec0 + FTS5 inserts.
func BenchmarkApplyDrainVsRaw(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursDrain(n, 0), RawIndex(n, RawBatch))
}

// Target 4 with the bulk batch size.
func BenchmarkApplyDrainBigBatchVsRaw(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursDrain(n, BulkLoadBatch), RawIndex(n, RawBatch))
}

// Target 5: Rebuild of b.N rows against FTS5 'rebuild' + vec0 inserts.
func BenchmarkApplyRebuildVsRaw(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursRebuild(n, true), RawRebuild(n))
}

// Target 5's report line: the online (default) Rebuild, nobody writing.
func BenchmarkApplyOnlineRebuildVsRaw(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursRebuild(n, false), RawRebuild(n))
}

// Targets 4 and 5 in CPU time of the process (steadier on a shared machine).
func BenchmarkApplyDrainVsRawCPU(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursDrainCPU(n, 0), RawIndexCPU(n, RawBatch))
}

func BenchmarkApplyRebuildVsRawCPU(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursRebuildCPU(n, true), RawRebuildCPU(n))
}

// Target 6: the bulk-load paths against plain CreateInBatches + raw indexing.
func BenchmarkBulkLoadDrainVsLimit(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursBulkLoad(n, BulkDrain), BulkLoadLimit(n))
}

func BenchmarkBulkLoadRebuildVsLimit(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursBulkLoad(n, BulkRebuild), BulkLoadLimit(n))
}

func BenchmarkBulkLoadOnlineRebuildVsLimit(b *testing.B) {
	n := benchN(b)
	benchApply(b, OursBulkLoad(n, BulkRebuildOnline), BulkLoadLimit(n))
}

func TestQueryCasesRun(t *testing.T) {
	t.Cleanup(CloseFixtures)
	r := Runner{Reps: 1, TempDir: func() (string, error) { return t.TempDir(), nil }}
	res := r.Run(context.Background(), QueryCases(60, 5))
	require.Len(t, res, 2)
	for _, x := range res {
		require.NoError(t, x.Err, x.Name)
		require.Greater(t, x.Ours.Median, 0.0, x.Name)
		require.Greater(t, x.Base.Median, 0.0, x.Name)
	}
}

// Target 8 over 20k rows (the fixture is built once per process). The
// figures are medians of 200 queries per side.
func BenchmarkQueryKNN20k(b *testing.B) {
	b.Cleanup(CloseFixtures)
	for range b.N {
		benchApply(b, OursKNN(20000, 100), RawKNN(20000, 100))
	}
}

func BenchmarkQuerySearch20k(b *testing.B) {
	b.Cleanup(CloseFixtures)
	for range b.N {
		benchApply(b, OursSearch(20000, 200), RawSearch(20000, 200))
	}
}

// The subprocess workloads (start-up, peak RSS) on tiny databases, with the
// indexer binary built once.
func TestSubprocessWorkloadsRun(t *testing.T) {
	t.Cleanup(RemoveBinary)
	ctx := context.Background()
	for _, w := range []Workload{IndexerStatus(20), PeakRSS(MemDrain, 50), PeakRSS(MemRebuild, 50)} {
		v, err := w.Run(ctx, t.TempDir())
		require.NoError(t, err, w.Name)
		require.Greater(t, v, 0.0, w.Name)
		t.Logf("%s: %.1f %s", w.Name, v, w.Unit)
	}
}

func TestStorageAndLagCasesRun(t *testing.T) {
	t.Parallel()
	r := Runner{Reps: 2, TempDir: func() (string, error) { return t.TempDir(), nil }}
	res := r.Run(context.Background(), append(StorageCases(30), LagCases(100, time.Second)...))
	require.Len(t, res, 7)
	for _, x := range res {
		require.NoError(t, x.Err, x.Name)
		require.Equal(t, 2, x.Ours.N, x.Name)
		require.Greater(t, x.Ours.Median, 0.0, x.Name)
	}
	// one retained event per key: the vector that a rebuild needs
	require.InDelta(t, 1.0, res[2].Ours.Median, 0.001)
}

func TestExperimentSharesRuns(t *testing.T) {
	t.Parallel()
	runs := 0
	e := newExperiment(func(context.Context, string) (map[string]float64, error) {
		runs++
		return map[string]float64{"a": float64(runs), "b": float64(10 * runs)}, nil
	})
	a, b, a2 := e.figure("a", "", "a"), e.figure("b", "", "b"), e.figure("a again", "", "a")
	ctx := context.Background()
	for rep := 1; rep <= 3; rep++ {
		for _, w := range []struct {
			w    Workload
			want float64
		}{{a, float64(rep)}, {b, float64(10 * rep)}, {a2, float64(rep)}} {
			v, err := w.w.Run(ctx, "")
			require.NoError(t, err)
			require.Equal(t, w.want, v)
		}
	}
	require.Equal(t, 3, runs)
}

// benchCases runs cases once (each repetition of `go test -bench -count`
// is one more) and reports every figure of the first case as metrics, and
// the rest's ours figures.
func benchCases(b *testing.B, cases []Case) {
	b.Cleanup(CloseFixtures)
	b.Cleanup(RemoveBinary)
	r := Runner{Reps: 1, TempDir: func() (string, error) { return b.TempDir(), nil }}
	for range b.N {
		for i, res := range r.Run(context.Background(), cases) {
			require.NoError(b, res.Err, res.Name)
			b.ReportMetric(res.Ours.Median, fmt.Sprintf("c%d-ours-%s", i, res.Case.Ours.Unit))
			if res.Base.N > 0 {
				b.ReportMetric(res.Base.Median, fmt.Sprintf("c%d-base-%s", i, res.Baseline.Unit))
				b.ReportMetric(res.Ratio, fmt.Sprintf("c%d-ratio", i))
			}
		}
	}
	b.ReportMetric(0, "ns/op")
}

// Target 7: lag at 200 and 1000 writes/s (10 s each; the full run uses 30 s).
func BenchmarkLag200(b *testing.B)  { benchCases(b, LagCases(200, 10*time.Second)) }
func BenchmarkLag1000(b *testing.B) { benchCases(b, LagCases(1000, 10*time.Second)) }

// Target 8 over 100k rows (builds a 100k-row fixture first: slow).
func BenchmarkQuery100k(b *testing.B) { benchCases(b, QueryCases(100000, 10)) }

// Target 9: peak RSS of indexer drain/rebuild, 20k vs 2k rows.
func BenchmarkPeakRSS(b *testing.B) { benchCases(b, MemoryCases(2000, 20000)) }

// Target 10: outbox bytes per live row.
func BenchmarkStorage(b *testing.B) { benchCases(b, StorageCases(1000)) }

// Target 11: indexer status, process start to exit.
func BenchmarkStartup(b *testing.B) { benchCases(b, StartupCases()) }
