package tests

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
)

// TestIntegrityAfterAnotherConnectionWroteFTS: the reference check must not
// report a sound FTS5 index as malformed because the checking pool's
// connection last used the index before another connection (the indexer's)
// wrote it. In the pinned SQLite, PRAGMA integrity_check trusts such a
// connection's cached FTS5 structure, which made the reliability tests
// flaky.
func TestIntegrityAfterAnotherConnectionWroteFTS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := testdb.Path(t)
	db := reliab.Prepare(t, path)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	sqlDB.SetMaxOpenConns(1) // every check below runs on this one connection

	// The indexer runs on a pool of its own, so it writes the sidecars on
	// other connections.
	ix, err := indexer.New(testdb.Open(t, path))
	require.NoError(t, err)
	defer ix.Close()
	wl := reliab.NewWorkload("integrity", 7)
	relWrite(t, db, wl, 40)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	reliab.Check(t, sqlDB) // the connection now has the FTS5 tables cached

	relWrite(t, db, wl, 40)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	sum := reliab.Check(t, sqlDB)
	require.Positive(t, sum.Tokens, "nothing was indexed")
}
