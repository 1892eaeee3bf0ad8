package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/stretchr/testify/require"
)

func TestBadFlagsExit2(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "never.db")
	for _, args := range [][]string{
		{"drain", "--nope"},
		{"drain"}, // no --db and no INDEXER_DB
		{"drain", "--db", db, "--batch-size", "0"},
		{"drain", "--db", db, "--progress", "sometimes"},
		{"run", "--db", db, "--log-format", "xml"},
		{"run", "--db", db, "--poll-interval", "0s"},
		{"status", "--db", db, "--log-level", "chatty"},
		{"status", "--db", db, "stray-argument"},
		{"replay", "--db", db},
		{"rebuild", "--db", db, "--table", ""},
		{"deadletters", "--db", db, "--id", "3"},
		{"deadletters", "--db", db, "--retry", "--id", "x"},
		{"demo", "--rows", "0"},
	} {
		r := run(t, nil, args...)
		require.Equal(t, 2, r.code, "%v: stdout %q stderr %q", args, r.stdout, r.stderr)
		require.NotEmpty(t, r.stderr, "%v", args)
	}
	_, err := os.Stat(db)
	require.ErrorIs(t, err, os.ErrNotExist, "no command created the database")
}

func TestMissingDatabaseExit1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "missing.db")
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"status", "--db", db}},
		{nil, []string{"drain", "--db", db}},
		{nil, []string{"run", "--db", db}},
		{nil, []string{"rebuild", "--db", db}},
		{nil, []string{"status", "--db", "file:" + db + "?_pragma=busy_timeout(100)"}},
		{[]string{"INDEXER_DB=" + db}, []string{"status"}},
	} {
		r := run(t, tc.env, tc.args...)
		require.Equal(t, 1, r.code, "%v: %s", tc.args, r.stderr)
		require.Contains(t, r.stderr, "database does not exist: "+db, "%v", tc.args)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing was created")
}

// A database that gormplugin.Migrate never prepared is refused, and left
// without outbox tables.
func TestUnpreparedDatabaseExit1(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := testdb.Open(t, path)
	require.NoError(t, db.Exec("CREATE TABLE plain (id INTEGER PRIMARY KEY, name TEXT)").Error)
	r := run(t, nil, "drain", "--db", path)
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "run gormplugin.Migrate")
	var n int
	require.NoError(t, db.Raw("SELECT count(*) FROM sqlite_master WHERE name LIKE 'oi_%'").Scan(&n).Error)
	require.Zero(t, n)
}
