package main

import (
	"os"
	"path/filepath"
	"regexp"
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
	caughtUp := regexp.MustCompile(`head (\d+)  applied (\d+)  pending 0`)
	for _, out := range []string{r.stdout, warm.stdout} {
		m := caughtUp.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		require.Equal(t, m[1], m[2], out)
	}
	require.NotContains(t, warm.stderr, "compilation cache unavailable")
}
