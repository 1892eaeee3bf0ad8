package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// --cache-dir configured the Wasm compilation cache of the former wazero
// engine. It is accepted for one more release as a no-op: the command works
// and nothing is written to the directory.
func TestCacheDirIsAcceptedAndIgnored(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "demo.db")
	r := run(t, nil, "demo", "--path", path, "--rows", "20", "--cache-dir", filepath.Join(t.TempDir(), "unused"))
	require.Equal(t, 0, r.code, r.stderr)

	dir := filepath.Join(t.TempDir(), "cache")
	r = run(t, nil, "status", "--db", path, "--cache-dir", dir, "--log-level", "debug")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `head (\d+)  applied (\d+)  pending 0`, r.stdout)
	require.Contains(t, r.stderr, "--cache-dir is deprecated and ignored")
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "nothing is cached any more")

	r = run(t, nil, "status", "--db", path, "--cache-dir", "off")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `head (\d+)  applied (\d+)  pending 0`, r.stdout)
}
