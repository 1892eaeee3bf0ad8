package bench

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench/limits"
	"github.com/stretchr/testify/require"
)

// The engine-context lines build the cgo program (its own module, with
// mattn/go-sqlite3 and sqlite-vec compiled by the C compiler that the race
// detector needs anyway) and run every engine workload on both engines.
// The first build compiles SQLite's amalgamation: about a minute on 2 cores
// with a cold go build cache.
func TestEngineCasesRunOnBothEngines(t *testing.T) {
	t.Parallel()
	t.Cleanup(RemoveCgoEngine)
	ctx := context.Background()
	v, err := CgoEngineVersion(ctx)
	require.NoError(t, err)
	require.Contains(t, v, "mattn/go-sqlite3")
	require.Contains(t, v, "sqlite-vec v0.1.6")

	r := Runner{Reps: 1, TempDir: func() (string, error) { return t.TempDir(), nil }}
	res := r.Run(ctx, EngineCases(40))
	require.Len(t, res, len(limits.EngineWorkloads()))
	for _, c := range res {
		require.NoError(t, c.Err, c.Name)
		require.Equal(t, "12", c.ID)
		require.Zero(t, c.Target, "engine context is report-only")
		require.Positive(t, c.Ours.Median, c.Name)
		require.Positive(t, c.Base.Median, c.Name)
		require.Positive(t, c.Ratio, c.Name)
	}
	var buf bytes.Buffer
	Print(&buf, res)
	require.Contains(t, buf.String(), "pure Go vs cgo")
}

// A missing engine is reported as unavailable, not as a failure.
func TestPrintUnavailable(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	Print(&buf, []Result{{Case: Case{ID: "12", Name: "engine: x"}, Err: fmt.Errorf("bench: cgo engine: %w: no compiler\nsecond line", ErrUnavailable)}})
	require.Contains(t, buf.String(), "unavailable: bench: cgo engine: unavailable: no compiler")
	require.NotContains(t, buf.String(), "second line")
}
