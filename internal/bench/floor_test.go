package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Ours against the naive outbox: what the plugin costs beyond the outbox
// row itself (≈1 means nothing).
func BenchmarkFloorOursVsNaiveOutbox(b *testing.B) {
	benchInterleaved(b, StepOursCreate(), StepNaiveOutbox(false), 50)
}

// The naive outbox against the same-bytes baseline: the floor of target 1.
func BenchmarkFloorNaiveOutboxVsBlob(b *testing.B) {
	benchInterleaved(b, StepNaiveOutbox(false), StepGormBlobCreate(), 50)
}

// The same floor with the (tbl, key, id) index of schema version 1: what
// that index cost per create.
func BenchmarkFloorNaiveOutboxV1IndexVsBlob(b *testing.B) {
	benchInterleaved(b, StepNaiveOutbox(true), StepGormBlobCreate(), 50)
}

// BenchmarkFloorWALFrames counts the WAL frames (pages) each single-row
// create commits: after setup, the WAL is checkpointed and truncated, then
// 120 creates run (fewer frames than the automatic checkpoint threshold of
// 1000, so the WAL keeps every frame).
func BenchmarkFloorWALFrames(b *testing.B) {
	ctx := context.Background()
	const n = 120
	for _, side := range []struct {
		name string
		s    Stepper
	}{{"blob", StepGormBlobCreate()}, {"naive-outbox", StepNaiveOutbox(false)}, {"naive-outbox-v1index", StepNaiveOutbox(true)}, {"ours", StepOursCreate()}} {
		dir := b.TempDir()
		step, done, err := side.s.Setup(ctx, dir, n)
		require.NoError(b, err)
		require.NoError(b, step(0, 1)) // first write: prepared statements, sqlite_sequence row
		db, err := Open(dir)
		require.NoError(b, err)
		require.NoError(b, exec(ctx, db, "PRAGMA wal_checkpoint(TRUNCATE)"))
		Close(db)
		walPath := filepath.Join(dir, "bench.db-wal")
		require.Zero(b, walSize(walPath))
		require.NoError(b, step(1, n))
		frames := float64(walSize(walPath)-32) / (4096 + 24) / float64(n-1)
		done()
		b.ReportMetric(frames, side.name+"-frames/op")
	}
	b.ReportMetric(0, "ns/op")
}

func walSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
