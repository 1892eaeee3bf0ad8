package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ncruces/go-sqlite3"
	"github.com/tetratelabs/wazero"
)

// CacheDirEnv overrides the directory of the Wasm compilation cache.
const CacheDirEnv = "OUTBOXINDEXER_CACHE_DIR"

// WazeroVersion is the wazero release go.mod pins. It is part of the
// compilation cache key (see CacheKey) and a test checks it against go.mod.
//
// It must stay at v1.9.0 or later: wazero up to v1.8.x calls Go's
// runtime.memmove for Wasm memory.copy/memory.fill and assumes DX survives
// the call; since Go 1.24 memmove clobbers DX on its REP MOVSQ path, taken on
// Intel CPUs with ERMS and FSRM, and SQLite then traps with "wasm error: out
// of bounds memory access" (wazero issue 2375, fixed in v1.9.0).
const WazeroVersion = "v1.9.0"

var cacheOnce struct {
	sync.Mutex
	dir string
}

// CacheKey names the subdirectory of the compilation cache that code compiled
// by this build may be loaded from: the pinned wazero version and a hash of
// the SQLite Wasm binary. Machine code compiled by any other wazero release
// or for any other Wasm binary lives under another key and is never loaded.
//
// wazero itself only separates caches by the version debug.ReadBuildInfo
// reports, which is "dev" in test binaries and the required rather than the
// replaced version under a replace directive; that let code compiled by the
// crashing v1.8.2 be loaded again after the upgrade.
func CacheKey() string { return cacheKey(WazeroVersion, sqlite3.Binary) }

func cacheKey(wazeroVersion string, wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return "wazero-" + wazeroVersion + "-wasm-" + hex.EncodeToString(sum[:12])
}

// DefaultCacheDir is where the compilation cache lives unless overridden:
// $OUTBOXINDEXER_CACHE_DIR, else <user cache dir>/outboxindexer/wazero.
// Either way the compiled code goes into its CacheKey subdirectory.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("engine: no user cache dir: %w", err)
	}
	return filepath.Join(base, "outboxindexer", "wazero"), nil
}

// UseCompilationCache makes the driver keep the compiled SQLite Wasm module
// under dir (DefaultCacheDir when dir is ""), in the subdirectory named by
// CacheKey, so that later processes of the same build skip the ~0.8 s
// compilation and no process ever loads code another build compiled. It must
// run before the first connection is opened; it replaces the driver's default
// runtime config, so it sets the same 256 MiB memory limit the driver would.
// Calling it again with the same dir is a no-op; with another dir after the
// first call, an error. Folders of older keys are left in place, never read.
func UseCompilationCache(dir string) error {
	if dir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return err
		}
		dir = d
	}
	cacheOnce.Lock()
	defer cacheOnce.Unlock()
	if cacheOnce.dir == dir {
		return nil
	}
	if cacheOnce.dir != "" {
		return errors.New("engine: compilation cache already set to " + cacheOnce.dir)
	}
	cache, err := openCache(dir, CacheKey())
	if err != nil {
		return err
	}
	sqlite3.RuntimeConfig = wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(4096) // 256 MiB, the driver's own default on 64-bit
	cacheOnce.dir = dir
	return nil
}

// openCache opens the wazero compilation cache in dir's subdirectory key.
func openCache(dir, key string) (wazero.CompilationCache, error) {
	keyed := filepath.Join(dir, key)
	if err := os.MkdirAll(keyed, 0o755); err != nil {
		return nil, fmt.Errorf("engine: compilation cache dir: %w", err)
	}
	cache, err := wazero.NewCompilationCacheWithDir(keyed)
	if err != nil {
		return nil, fmt.Errorf("engine: compilation cache %s: %w", keyed, err)
	}
	return cache, nil
}
