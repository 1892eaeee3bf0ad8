package engine

import (
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

var cacheOnce struct {
	sync.Mutex
	dir string
}

// DefaultCacheDir is where the compilation cache lives unless overridden:
// $OUTBOXINDEXER_CACHE_DIR, else <user cache dir>/outboxindexer/wazero.
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

// UseCompilationCache makes the driver keep the compiled SQLite Wasm module in
// dir (DefaultCacheDir when dir is ""), so that later processes skip the
// ~0.8 s compilation. It must run before the first connection is opened; it
// replaces the driver's default runtime config, so it sets the same 256 MiB
// memory limit the driver would. Calling it again with the same dir is a
// no-op; with another dir after the first connection, an error.
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("engine: compilation cache dir: %w", err)
	}
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return fmt.Errorf("engine: compilation cache: %w", err)
	}
	sqlite3.RuntimeConfig = wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(4096) // 256 MiB, the driver's own default on 64-bit
	cacheOnce.dir = dir
	return nil
}
