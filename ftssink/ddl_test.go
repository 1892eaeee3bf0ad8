package ftssink_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Create gives a live sidecar the live page size, on a table that lacks
// it too, and writes nothing when the table has it (every migration calls
// Create).
func TestCreateSetsLivePageSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sqlDB, err := testdb.New(t).DB()
	require.NoError(t, err)
	sqlDB.SetMaxOpenConns(1) // total_changes() counts per connection
	spec := &outbox.Spec{Version: outbox.SpecVersion, Source: "docs", Key: "id", KeyType: outbox.KeyInteger,
		FTS: &outbox.FTSSpec{Table: "docs_fts", Mode: outbox.ModeContentless, Tokenize: "unicode61",
			Columns: []outbox.FTSCol{{Name: "body", Source: "body"}}}}
	pgsz := func() (v int) {
		require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT coalesce((SELECT v FROM docs_fts_config WHERE k = 'pgsz'), 0)`).Scan(&v))
		return v
	}
	changes := func() (n int64) {
		require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&n))
		return n
	}

	require.NoError(t, ftssink.Create(ctx, sqlDB, spec))
	require.Equal(t, 1000, pgsz())
	before := changes()
	require.NoError(t, ftssink.Create(ctx, sqlDB, spec))
	require.Equal(t, before, changes(), "a second Create writes nothing")

	// A table of an earlier release, with FTS5's default.
	_, err = sqlDB.ExecContext(ctx, `DELETE FROM docs_fts_config WHERE k = 'pgsz'`)
	require.NoError(t, err)
	require.Zero(t, pgsz())
	require.NoError(t, ftssink.Create(ctx, sqlDB, spec))
	require.Equal(t, 1000, pgsz())
}
