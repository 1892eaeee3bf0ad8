package ftssink_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Create gives a live sidecar the live settings (page size 1000, no
// automatic merges, crisis merges at 64 segments), on a table that lacks
// them too, and writes nothing when the table has them (every migration
// calls Create).
func TestCreateSetsLiveSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sqlDB, err := testdb.New(t).DB()
	require.NoError(t, err)
	sqlDB.SetMaxOpenConns(1) // total_changes() counts per connection
	spec := &outbox.Spec{Version: outbox.SpecVersion, Source: "docs", Key: "id", KeyType: outbox.KeyInteger,
		FTS: &outbox.FTSSpec{Table: "docs_fts", Mode: outbox.ModeContentless, Tokenize: "unicode61",
			Columns: []outbox.FTSCol{{Name: "body", Source: "body"}}}}
	setting := func(k string) (v int) {
		require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT coalesce((SELECT v FROM docs_fts_config WHERE k = ?), -1)`, k).Scan(&v))
		return v
	}
	live := func() {
		t.Helper()
		require.Equal(t, 1000, setting("pgsz"))
		require.Equal(t, 0, setting("automerge"))
		require.Equal(t, 64, setting("crisismerge"))
	}
	changes := func() (n int64) {
		require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&n))
		return n
	}

	require.NoError(t, ftssink.Create(ctx, sqlDB, spec))
	live()
	before := changes()
	require.NoError(t, ftssink.Create(ctx, sqlDB, spec))
	require.Equal(t, before, changes(), "a second Create writes nothing")

	// Tables of earlier releases: FTS5's defaults, or automerge 4.
	_, err = sqlDB.ExecContext(ctx, `DELETE FROM docs_fts_config WHERE k IN ('pgsz', 'crisismerge')`)
	require.NoError(t, err)
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO docs_fts (docs_fts, rank) VALUES ('automerge', 4)`)
	require.NoError(t, err)
	require.Equal(t, -1, setting("pgsz"))
	require.Equal(t, 4, setting("automerge"))
	require.NoError(t, ftssink.Create(ctx, sqlDB, spec))
	live()

	// The settings hold: a write leaves its segment unmerged.
	ft, err := ftssink.NewTable(spec)
	require.NoError(t, err)
	for i := 1; i <= 8; i++ {
		_, err := sqlDB.ExecContext(ctx, `INSERT INTO docs_fts (rowid, body) VALUES (?, 'text')`, i)
		require.NoError(t, err)
	}
	s, err := ft.Structure(ctx, sqlDB)
	require.NoError(t, err)
	require.Len(t, s.Levels, 1)
	require.Equal(t, 8, s.Levels[0].Segments, "one segment a write: no automatic merge")
}
