package engine

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
)

// A module with one empty function: enough for wazero to compile and cache
// machine code.
var tinyWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: func() -> ()
	0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: empty body
}

// compileWith compiles tinyWasm through a cache opened under dir/key and
// returns the cache files that exist afterwards.
func compileWith(t *testing.T, dir, key string) []string {
	t.Helper()
	ctx := context.Background()
	cache, err := openCache(dir, key)
	require.NoError(t, err)
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	_, err = rt.CompileModule(ctx, tinyWasm)
	require.NoError(t, err)
	require.NoError(t, rt.Close(ctx))
	require.NoError(t, cache.Close(ctx))
	return cacheFiles(t, filepath.Join(dir, key))
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	require.NoError(t, err)
	return files
}

// Code compiled under one key is never loaded under another: the other key's
// directory starts empty and gets its own compilation, and a corrupted entry
// under the first key does not reach a runtime on the second.
func TestCacheKeySeparatesBuilds(t *testing.T) {
	t.Parallel()
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("wazero's compiler runs on amd64 and arm64 only")
	}
	dir := t.TempDir()
	old := cacheKey("v1.8.2", tinyWasm)
	cur := cacheKey(WazeroVersion, tinyWasm)
	require.NotEqual(t, old, cur, "the wazero version is part of the key")
	require.NotEqual(t, cur, cacheKey(WazeroVersion, append(tinyWasm[:len(tinyWasm):len(tinyWasm)], 0x00, 0x01, 0x00)),
		"the Wasm binary is part of the key")

	oldFiles := compileWith(t, dir, old)
	require.NotEmpty(t, oldFiles, "compiling under %s wrote a cache entry", old)
	// Poison what the "old build" left: were it loaded, compilation would fail
	// or run garbage.
	for _, f := range oldFiles {
		require.NoError(t, os.WriteFile(f, []byte("not machine code"), 0o644))
	}
	require.Empty(t, cacheFiles(t, filepath.Join(dir, cur)))
	curFiles := compileWith(t, dir, cur)
	require.NotEmpty(t, curFiles, "the current key compiled its own code")
	for _, f := range curFiles {
		require.True(t, strings.HasPrefix(f, filepath.Join(dir, cur)+string(filepath.Separator)), f)
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NotEqual(t, "not machine code", string(b))
	}
}

// The key in use names the pinned wazero version and the SQLite Wasm binary
// the driver loads.
func TestCacheKeyNamesThisBuild(t *testing.T) {
	t.Parallel()
	require.NotEmpty(t, sqlite3.Binary, "the sqlite-vec bindings set the Wasm binary")
	k := CacheKey()
	require.True(t, strings.HasPrefix(k, "wazero-"+WazeroVersion+"-wasm-"), k)
	require.Equal(t, cacheKey(WazeroVersion, sqlite3.Binary), k)
}

// UseCompilationCache keeps compiled code only under dir/CacheKey(), so a
// cache folder another build left in dir (the unkeyed layout of earlier
// releases included) is never read.
func TestUseCompilationCacheWritesUnderKey(t *testing.T) {
	// Not parallel: it sets the driver's process-wide runtime config.
	dir := t.TempDir()
	stale := filepath.Join(dir, "wazero-v1.8.2-amd64-linux")
	require.NoError(t, os.MkdirAll(stale, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(stale, "0123"), []byte("stale"), 0o644))
	cacheOnce.Lock()
	prevDir, prevCfg := cacheOnce.dir, sqlite3.RuntimeConfig
	cacheOnce.dir = ""
	cacheOnce.Unlock()
	t.Cleanup(func() {
		cacheOnce.Lock()
		cacheOnce.dir, sqlite3.RuntimeConfig = prevDir, prevCfg
		cacheOnce.Unlock()
	})
	require.NoError(t, UseCompilationCache(dir))
	require.NoError(t, UseCompilationCache(dir), "same dir again is a no-op")
	require.Error(t, UseCompilationCache(t.TempDir()), "another dir after the first is refused")
	_, err := os.Stat(filepath.Join(dir, CacheKey()))
	require.NoError(t, err, "the keyed folder exists")
	b, err := os.ReadFile(filepath.Join(stale, "0123"))
	require.NoError(t, err)
	require.Equal(t, "stale", string(b), "stale folders are left alone")
}
