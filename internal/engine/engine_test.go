package engine_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/stretchr/testify/require"
)

// The sqlite-vec Wasm build only runs on ncruces/go-sqlite3 v0.19.0–v0.21.3;
// this guards the pin in go.mod against a blind upgrade.
func TestGoModPinsDriver(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	mod := string(b)
	for _, want := range []string{
		"github.com/ncruces/go-sqlite3 v0.21.3",
		"github.com/ncruces/go-sqlite3/gormlite v0.21.0",
		"github.com/asg017/sqlite-vec-go-bindings v0.1.6",
	} {
		require.Contains(t, mod, want, "go.mod must pin %s", want)
	}
	require.Regexp(t, `gorm\.io/gorm v1\.31\.`, mod)

	// wazero up to v1.8.x crashes on Intel CPUs with ERMS and FSRM ("wasm
	// error: out of bounds memory access": its amd64 code keeps DX across Go's
	// runtime.memmove, which clobbers DX there since Go 1.24; wazero issue
	// 2375, fixed in v1.9.0). Never go back below v1.9.0, and keep the cache
	// key's version (engine.WazeroVersion) equal to the pin.
	m := regexp.MustCompile(`github\.com/tetratelabs/wazero v1\.(\d+)\.(\d+)`).FindStringSubmatch(mod)
	require.NotNil(t, m, "go.mod must pin github.com/tetratelabs/wazero")
	minor, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.GreaterOrEqual(t, minor, 9, "wazero %s: v1.9.0 or later is required (Intel ERMS+FSRM crash)", m[0])
	require.Equal(t, "github.com/tetratelabs/wazero "+engine.WazeroVersion, m[0],
		"engine.WazeroVersion keys the compilation cache and must equal the pinned version")
}

func TestEngineHasVecAndFTS5(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, engine.Check(context.Background(), sqlDB))
	var v, sv string
	require.NoError(t, sqlDB.QueryRow("SELECT vec_version(), sqlite_version()").Scan(&v, &sv))
	require.Equal(t, "v0.1.6", v)
	require.Equal(t, engine.VecVersion, v)
	require.Equal(t, "3.47.0", sv)
	require.Equal(t, engine.SQLiteVersion, sv)
	_, err = sqlDB.Exec("CREATE VIRTUAL TABLE f USING fts5(a)")
	require.NoError(t, err)
	var mode string
	require.NoError(t, sqlDB.QueryRow("PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "wal", strings.ToLower(mode))
}

func TestDSN(t *testing.T) {
	t.Parallel()
	d := engine.DSN("/tmp/a b.db")
	require.True(t, strings.HasPrefix(d, "file:/tmp/a%20b.db?"), d)
	require.Contains(t, d, "busy_timeout")
	require.Contains(t, d, "_txlock=immediate")
	require.Equal(t, "file:x.db?mode=ro", engine.DSN("file:x.db?mode=ro"))
}
