package bench

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	s := summarize([]float64{3, 1, 2, 10})
	require.Equal(t, Stat{Median: 2.5, Min: 1, Max: 10, N: 4}, s)
	require.True(t, math.IsNaN(summarize(nil).Median))
}

func TestRunnerRatiosAndTable(t *testing.T) {
	t.Parallel()
	fixed := func(v float64) Workload {
		return Workload{Name: "w", Unit: "s", Run: func(context.Context, string) (float64, error) { return v, nil }}
	}
	r := Runner{Reps: 3, TempDir: func() (string, error) { return t.TempDir(), nil }}
	res := r.Run(context.Background(), []Case{
		{ID: "1", Name: "cost", Ours: fixed(2), Baseline: fixed(4), Target: 0.6},
		{ID: "2", Name: "throughput", Ours: fixed(2), Baseline: fixed(4), Direction: HigherIsBetter, Target: 0.8},
		{ID: "3", Name: "report", Ours: fixed(1)},
	})
	require.Len(t, res, 3)
	require.InDelta(t, 0.5, res[0].Ratio, 1e-12)
	require.True(t, res[0].Met())
	require.False(t, res[1].Met())
	require.True(t, res[2].Met())
	var buf bytes.Buffer
	Print(&buf, res)
	require.Contains(t, buf.String(), "0.500×")
	require.Contains(t, buf.String(), "NO")
}

// An interleaved case reports the median of its repetitions' ratios, their
// range, and a report-only CPU-time line.
func TestRunnerPairCase(t *testing.T) {
	t.Parallel()
	sleeper := func(name string, d time.Duration) Stepper {
		return Stepper{Name: name, Setup: func(context.Context, string, int) (func(int, int) error, func(), error) {
			return func(from, to int) error {
				time.Sleep(time.Duration(to-from) * d)
				return nil
			}, func() {}, nil
		}}
	}
	r := Runner{Reps: 3, TempDir: func() (string, error) { return t.TempDir(), nil }}
	res := r.Run(context.Background(), []Case{
		PairCase("1", "slow vs fast", sleeper("slow", 2*time.Millisecond), sleeper("fast", time.Millisecond), 20, 5, "µs/op", 1.2),
	})
	require.NotEmpty(t, res)
	require.NoError(t, res[0].Err)
	require.Equal(t, 3, res[0].Ratios.N)
	require.Greater(t, res[0].Ratio, 1.2, "sleeping twice as long is about twice the cost")
	require.Less(t, res[0].Ratio, 4.0)
	require.False(t, res[0].Met())
	require.Greater(t, res[0].Ours.Median, res[0].Base.Median)
	for _, c := range res[1:] {
		require.Contains(t, c.Name, "CPU time")
		require.Zero(t, c.Target, "the CPU line is report-only")
	}
	var buf bytes.Buffer
	Print(&buf, res)
	require.Regexp(t, `\d\.\d{3}× \[\d\.\d{3}–\d\.\d{3}\]`, buf.String())

	// The real capture steppers, on a tiny size: they run interleaved on
	// real SQLite files and give positive figures.
	res = r.Run(context.Background(), CaptureCases(20, 1000)[:1])
	require.NoError(t, res[0].Err)
	require.Greater(t, res[0].Ours.Median, 0.0)
	require.Greater(t, res[0].Base.Median, 0.0)
}

// The baselines run on real SQLite files; a tiny size keeps this a test of
// correctness (they run and return positive figures), not of speed.
func TestBaselinesRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, w := range []Workload{GormBlobCreate(20), GormBlobCreateInBatches(50, 20), SyncCreate(20), RawIndex(50, 20), RawRebuild(50)} {
		v, err := w.Run(ctx, t.TempDir())
		require.NoError(t, err, w.Name)
		require.Greater(t, v, 0.0, w.Name)
	}
}

// pairOrder alternates the roles of the interleaved benchmarks' sides
// from one run (-count) to the next.
var pairOrder int

// benchOne runs w on b.N rows and reports its figure (for profiling one
// side alone).
func benchOne(b *testing.B, w func(n int) Workload) {
	n := max(b.N, 1)
	v, err := w(n).Run(context.Background(), b.TempDir())
	require.NoError(b, err)
	b.ReportMetric(v, w(n).Unit)
	b.ReportMetric(0, "ns/op")
}

func batches500(f func(n, batch int) Workload) func(int) Workload {
	return func(n int) Workload { return f(n, 500) }
}

// One side alone, for -cpuprofile.
func BenchmarkOursCreate(b *testing.B)     { benchOne(b, OursCreate) }
func BenchmarkGormBlobCreate(b *testing.B) { benchOne(b, GormBlobCreate) }
func BenchmarkOursCreateInBatches(b *testing.B) {
	benchOne(b, batches500(OursCreateInBatches))
}
func BenchmarkGormBlobCreateInBatches(b *testing.B) {
	benchOne(b, batches500(GormBlobCreateInBatches))
}
func BenchmarkOursUpdateCounter(b *testing.B)  { benchOne(b, OursUpdateCounter) }
func BenchmarkPlainUpdateCounter(b *testing.B) { benchOne(b, PlainUpdateCounter) }

// benchInterleaved runs a and b on b.N operations each, interleaved in
// blocks, and reports both costs and the ratio a/b.
func benchInterleaved(b *testing.B, x, y Stepper, block int) {
	n := max(b.N, block)
	pairOrder++
	p, err := InterleaveAlternating(context.Background(), x, y, b.TempDir(), b.TempDir(), n, block, pairOrder)
	require.NoError(b, err)
	b.ReportMetric(p.A, "ours-µs/op")
	b.ReportMetric(p.B, "base-µs/op")
	b.ReportMetric(p.Ratio, "ratio")
	b.ReportMetric(p.CPURatio, "cpu-ratio")
	b.ReportMetric(p.ACPU, "ours-cpu-µs/op")
	b.ReportMetric(p.BCPU, "base-cpu-µs/op")
	b.ReportMetric(0, "ns/op")
}

// Interleaved versions of the capture targets: the two sides alternate every
// block of operations, which keeps the ratio stable on a busy machine.
func BenchmarkInterleavedCreateVsBlob(b *testing.B) {
	benchInterleaved(b, StepOursCreate(), StepGormBlobCreate(), 50)
}

func BenchmarkInterleavedCreateVsSync(b *testing.B) {
	benchInterleaved(b, StepOursCreate(), StepSyncCreate(), 50)
}

func BenchmarkInterleavedCreateInBatchesVsBlob(b *testing.B) {
	benchInterleaved(b, StepOursCreateInBatches(500), StepGormBlobCreateInBatches(500), 1000)
}

func BenchmarkInterleavedUpdateCounterVsPlain(b *testing.B) {
	benchInterleaved(b, StepOursUpdateCounter(), StepPlainUpdateCounter(), 50)
}

// The Go-side cost of the plugin on an update of a non-indexed column,
// without SQLite: the same Update in DryRun mode (gorm builds the statement
// and runs every callback but executes nothing), with and without the
// plugin.
func BenchmarkUpdateCounterDryRun(b *testing.B) {
	ctx := context.Background()
	ours, err := openIndexed(ctx, b.TempDir())
	require.NoError(b, err)
	defer Close(ours)
	plain, err := Open(b.TempDir())
	require.NoError(b, err)
	defer Close(plain)
	require.NoError(b, plain.AutoMigrate(&CounterDoc{}))
	for _, side := range []struct {
		name  string
		db    *gorm.DB
		model any
	}{{"ours", ours, &Article{}}, {"plain", plain, &CounterDoc{}}} {
		b.Run(side.name, func(b *testing.B) {
			db := side.db.Session(&gorm.Session{DryRun: true, Context: ctx})
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := db.Model(side.model).Where("id = ?", i).Update("views", gorm.Expr("views + 1")).Error; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
