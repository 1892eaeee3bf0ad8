package engine_test

import (
	"database/sql"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/stretchr/testify/require"
)

// The engine facts docs/ARCHITECTURE.md lists, checked on the engine this
// build runs on, so that an engine upgrade that changes one fails here
// instead of silently invalidating a design decision.
func TestEngineFacts(t *testing.T) {
	t.Parallel()
	db, err := sql.Open(engine.DriverName, engine.DSN(testdb.Path(t)))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	exec := func(q string, args ...any) error { _, err := db.Exec(q, args...); return err }
	require.NoError(t, exec(`CREATE VIRTUAL TABLE v USING vec0(embedding float[2])`))
	require.NoError(t, exec(`INSERT INTO v(rowid, embedding) VALUES (1, '[1,2]')`))

	t.Run("vec0 rejects INSERT OR REPLACE on an existing rowid", func(t *testing.T) {
		require.Error(t, exec(`INSERT OR REPLACE INTO v(rowid, embedding) VALUES (1, '[3,4]')`))
	})
	t.Run("vec0 rejects double-quoted names", func(t *testing.T) {
		require.Error(t, exec(`CREATE VIRTUAL TABLE "q" USING vec0("embedding" float[2])`))
	})
	t.Run("vec0 k is at most 4096", func(t *testing.T) {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM v WHERE embedding MATCH '[1,2]' AND k = 4097`).Scan(&n)
		require.Error(t, err)
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM v WHERE embedding MATCH '[1,2]' AND k = 4096`).Scan(&n))
		require.Equal(t, 1, n)
	})
	t.Run("vec0 has no dot metric", func(t *testing.T) {
		require.Error(t, exec(`CREATE VIRTUAL TABLE d USING vec0(embedding float[2] distance_metric=dot)`))
	})
	t.Run("dbstat is not compiled in", func(t *testing.T) {
		var n int
		require.Error(t, db.QueryRow(`SELECT count(*) FROM dbstat`).Scan(&n))
	})
	// ncruces/go-sqlite3 v0.21.3 failed with "another row available" here;
	// the log still stores "no vector" as the empty TEXT '' (outbox.NoVector),
	// which every engine reads back.
	t.Run("a zero-length BLOB reads back", func(t *testing.T) {
		require.NoError(t, exec(`CREATE TABLE b (x BLOB)`))
		require.NoError(t, exec(`INSERT INTO b VALUES (?)`, []byte{}))
		var got []byte
		require.NoError(t, db.QueryRow(`SELECT x FROM b`).Scan(&got))
		require.Empty(t, got)
	})
	// ALTER TABLE … RENAME succeeds, but vec0 has no xRename: its shadow
	// tables keep the old name and the renamed table is unusable (even DROP
	// fails). Rebuilds therefore drop and recreate.
	t.Run("a renamed vec0 table is broken", func(t *testing.T) {
		require.NoError(t, exec(`CREATE VIRTUAL TABLE r USING vec0(embedding float[2])`))
		require.NoError(t, exec(`INSERT INTO r(rowid, embedding) VALUES (1, '[1,2]')`))
		require.NoError(t, exec(`ALTER TABLE r RENAME TO r2`))
		var n int
		require.ErrorContains(t, db.QueryRow(`SELECT count(*) FROM r2`).Scan(&n), "no such table: main.r2_rowids")
		var shadow int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'r_chunks'`).Scan(&shadow))
		require.Equal(t, 1, shadow, "the shadow tables keep the old name")
	})
}
