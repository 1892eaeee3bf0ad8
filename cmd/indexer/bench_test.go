package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The bench command runs the suite end to end; the smallest sizes keep this a
// test that it runs and prints the table with ratios, not a measurement.
func TestBenchPrintsRatioTable(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "bench", "--only", "3", "--reps", "1", "--capture-rows", "20")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "outboxindexer bench")
	require.Contains(t, r.stdout, "update of a non-indexed column, 80 updates")
	require.Regexp(t, `\d\.\d{3}×\s+≤ 1\.05×\s+(yes|NO)`, r.stdout)

	r = run(t, nil, "bench", "--reps", "0")
	require.Equal(t, 2, r.code)
}
