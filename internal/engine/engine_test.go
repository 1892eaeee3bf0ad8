package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/stretchr/testify/require"
)

// go.mod pins the engine. ncruces/go-sqlite3 v0.37.0 (SQLite 3.54.1) is the
// first release this module runs on without wazero: SQLite is Go code
// translated from Wasm by wasm2go, and FTS5 and sqlite-vec are dylink.0
// modules linked into each connection with sqlite3.ExtensionInit; the
// committed sqlite-vec translation (package vec) is generated against the
// extension ABI of this release, so upgrade the two together (rerun
// vec/build/build.sh). gormlite v0.34.0 is the newest gormlite the proxy
// serves and works with v0.37.0. sqlite-vec-go-bindings v0.1.6 provides the
// sqlite-vec C source (cgo package) compiled into package vec. The cgo engine
// (build tag outboxindexer_cgo) is gorm.io/driver/sqlite v1.6.0 over
// mattn/go-sqlite3 v1.14.53, the release that embeds the same SQLite 3.54.1;
// vec/build/build.sh also takes SQLite's headers from it. wazero, the
// Wasm runtime of the former engine (JIT compilation, a CPU-specific crash,
// issue 11), must not come back.
func TestGoModPinsDriver(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	mod := string(b)
	for _, want := range []string{
		"github.com/ncruces/go-sqlite3 v0.37.0",
		"github.com/ncruces/go-sqlite3/gormlite v0.34.0",
		"github.com/asg017/sqlite-vec-go-bindings v0.1.6",
		"github.com/mattn/go-sqlite3 v1.14.53",
		"gorm.io/driver/sqlite v1.6.0",
	} {
		require.Contains(t, mod, want, "go.mod must pin %s", want)
	}
	require.Regexp(t, `gorm\.io/gorm v1\.31\.`, mod)
	require.NotContains(t, mod, "github.com/tetratelabs/wazero", "the engine runs without wazero")
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
	require.Equal(t, "3.54.1", sv)
	require.Equal(t, engine.SQLiteVersion, sv)
	_, err = sqlDB.Exec("CREATE VIRTUAL TABLE f USING fts5(a)")
	require.NoError(t, err)
	_, err = sqlDB.Exec("INSERT INTO f(a) VALUES ('hello world'), ('goodbye')")
	require.NoError(t, err)
	var hit string
	require.NoError(t, sqlDB.QueryRow("SELECT a FROM f WHERE f MATCH 'hello'").Scan(&hit))
	require.Equal(t, "hello world", hit)
	var mode string
	require.NoError(t, sqlDB.QueryRow("PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "wal", strings.ToLower(mode))
}

// Every connection of the pool gets both extensions, not only the first.
func TestEveryConnectionHasExtensions(t *testing.T) {
	t.Parallel()
	sqlDB, err := sql.Open(engine.DriverName, engine.DSN(testdb.Path(t)))
	require.NoError(t, err)
	t.Cleanup(func() { sqlDB.Close() })
	ctx := context.Background()
	var conns []*sql.Conn
	for range 4 {
		c, err := sqlDB.Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
		var v string
		require.NoError(t, c.QueryRowContext(ctx, "SELECT vec_version()").Scan(&v))
		require.Equal(t, engine.VecVersion, v)
		_, err = c.ExecContext(ctx, "CREATE VIRTUAL TABLE IF NOT EXISTS f USING fts5(a)")
		require.NoError(t, err)
	}
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
}

// vec0 works end to end on the translated sqlite-vec: create, insert, KNN.
func TestVec0KNN(t *testing.T) {
	t.Parallel()
	sqlDB, err := sql.Open(engine.DriverName, engine.DSN(testdb.Path(t)))
	require.NoError(t, err)
	t.Cleanup(func() { sqlDB.Close() })
	_, err = sqlDB.Exec("CREATE VIRTUAL TABLE v USING vec0(embedding float[3] distance_metric=cosine)")
	require.NoError(t, err)
	for i, vec := range []string{"[1,0,0]", "[0,1,0]", "[0.9,0.1,0]"} {
		_, err = sqlDB.Exec("INSERT INTO v(rowid, embedding) VALUES (?, ?)", i+1, vec)
		require.NoError(t, err)
	}
	rows, err := sqlDB.Query("SELECT rowid FROM v WHERE embedding MATCH '[1,0,0]' AND k = 2 ORDER BY distance")
	require.NoError(t, err)
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		got = append(got, id)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []int64{1, 3}, got)
}

func TestCheckReportsMissingExtensions(t *testing.T) {
	t.Parallel()
	sqlDB, err := sql.Open(engine.DriverName, engine.DSN(testdb.Path(t)))
	require.NoError(t, err)
	t.Cleanup(func() { sqlDB.Close() })
	require.NoError(t, engine.Check(context.Background(), sqlDB))
	var fts int
	require.NoError(t, sqlDB.QueryRow("SELECT count(*) FROM pragma_module_list WHERE name = 'fts5'").Scan(&fts))
	require.Equal(t, 1, fts)
}

func TestDSN(t *testing.T) {
	t.Parallel()
	d := engine.DSN("/tmp/a b.db")
	require.True(t, strings.HasPrefix(d, "file:/tmp/a%20b.db?"), d)
	require.Contains(t, d, "busy_timeout")
	require.Contains(t, d, "_txlock=immediate")
	require.Equal(t, "file:x.db?mode=ro", engine.DSN("file:x.db?mode=ro"))
}

func TestBusyTimeout(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(engine.DSN("/tmp/x.db"))
	require.NoError(t, err)
	ms, ok := engine.BusyTimeoutMS(u.Query())
	require.True(t, ok)
	require.Equal(t, engine.DefaultBusyTimeoutMS, ms)

	q := url.Values{"mode": {"ro"}}
	_, ok = engine.BusyTimeoutMS(q)
	require.False(t, ok)
	engine.EnsureBusyTimeout(q)
	ms, ok = engine.BusyTimeoutMS(q)
	require.True(t, ok)
	require.Equal(t, engine.DefaultBusyTimeoutMS, ms)

	k, v := engine.BusyTimeoutParam(250)
	q = url.Values{k: {v}}
	engine.EnsureBusyTimeout(q)
	ms, ok = engine.BusyTimeoutMS(q)
	require.True(t, ok)
	require.Equal(t, 250, ms, "an explicit timeout is kept")
	require.Len(t, q, 1)
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	for _, c := range []engine.Code{engine.CodeBusy, engine.CodeLocked, engine.CodeIOErr, engine.CodeFull} {
		err := fmt.Errorf("wrapped: %w", engine.NewError(c))
		got, ok := engine.ErrorCode(err)
		require.True(t, ok)
		require.Equal(t, c, got)
		require.True(t, engine.Transient(err), "code %d", c)
		require.False(t, engine.ReadOnly(err))
	}
	ro := engine.NewError(engine.CodeReadOnly)
	require.True(t, engine.ReadOnly(ro))
	require.False(t, engine.Transient(ro), "a read-only connection stays read-only")
	require.False(t, engine.Transient(errors.New("other")))
	_, ok := engine.ErrorCode(errors.New("other"))
	require.False(t, ok)

	// A real error from the driver: SQLITE_ERROR, not transient.
	db, err := sql.Open(engine.DriverName, engine.DSN(testdb.Path(t)))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec("SELECT * FROM no_such_table")
	c, ok := engine.ErrorCode(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, engine.CodeError, c)
	require.False(t, engine.Transient(err))
}

// RegisterFunction's functions exist on every connection, with each SQL
// type converted both ways.
func TestRegisteredFunction(t *testing.T) {
	t.Parallel()
	db, err := sql.Open(engine.DriverName, engine.DSN(testdb.Path(t)))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var typ, back string
	for _, tc := range []struct {
		arg      any
		typ      string
		backType string
	}{
		{nil, "<nil>", "null"},
		{int64(7), "int64", "integer"},
		{2.5, "float64", "real"},
		{"text", "string", "text"},
		{[]byte{1, 2}, "[]uint8", "blob"},
	} {
		require.NoError(t, db.QueryRow("SELECT oi_test_type(?), typeof(oi_test_echo(?))", tc.arg, tc.arg).Scan(&typ, &back))
		require.Equal(t, tc.typ, typ)
		require.Equal(t, tc.backType, back)
	}
	var echoed []byte
	require.NoError(t, db.QueryRow("SELECT oi_test_echo(?)", []byte{9, 8, 7}).Scan(&echoed))
	require.Equal(t, []byte{9, 8, 7}, echoed)
	err = db.QueryRow("SELECT oi_test_echo(?)", "fail").Scan(&back)
	require.ErrorContains(t, err, "asked to fail")
}

// DSNWith's settings take effect on the engine's driver.
func TestDSNWith(t *testing.T) {
	t.Parallel()
	d, err := engine.DSNWith(testdb.Path(t), engine.Params{BusyTimeoutMS: 1234, JournalMode: "wal", TxLock: "immediate"})
	require.NoError(t, err)
	db, err := sql.Open(engine.DriverName, d)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var busy int
	var mode string
	require.NoError(t, db.QueryRow("PRAGMA busy_timeout").Scan(&busy))
	require.NoError(t, db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, 1234, busy)
	require.Equal(t, "wal", strings.ToLower(mode))

	d, err = engine.DSNWith(testdb.Path(t), engine.Params{})
	require.NoError(t, err)
	db0, err := sql.Open(engine.DriverName, d)
	require.NoError(t, err)
	t.Cleanup(func() { db0.Close() })
	require.NoError(t, db0.QueryRow("PRAGMA busy_timeout").Scan(&busy))
	require.Zero(t, busy, "BusyTimeoutMS 0 means no busy timeout, not the driver's default")
}
