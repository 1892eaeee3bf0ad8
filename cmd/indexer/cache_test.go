package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// --cache-dir puts the compiled SQLite Wasm in the given directory, and the
// next process starts from it (the start-up figures are measured by the
// benchmarks, not asserted here).
func TestCompilationCacheDir(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "demo.db")
	r := run(t, nil, "demo", "--path", path, "--rows", "20")
	require.Equal(t, 0, r.code, r.stderr)

	dir := filepath.Join(t.TempDir(), "cache")
	r = run(t, nil, "status", "--db", path, "--cache-dir", dir)
	require.Equal(t, 0, r.code, r.stderr)
	var files int
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return err
	}))
	require.Positive(t, files, "the compiled module was cached in %s", dir)

	warm := run(t, nil, "status", "--db", path, "--cache-dir", dir)
	require.Equal(t, 0, warm.code, warm.stderr)
	require.Contains(t, r.stdout, "head 20  applied 20  pending 0")
	require.Contains(t, warm.stdout, "head 20  applied 20  pending 0")
	require.NotContains(t, warm.stderr, "compilation cache unavailable")
}
