package bench

import (
	"bytes"
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
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
