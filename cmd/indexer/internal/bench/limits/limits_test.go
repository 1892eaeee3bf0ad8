package limits_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench/limits"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := testdb.New(t).DB()
	require.NoError(t, err)
	return db
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestDocsAreDeterministicPrefixes(t *testing.T) {
	t.Parallel()
	a := limits.Docs(3)
	b := limits.Docs(5)
	require.Equal(t, a, b[:3])
	require.Len(t, a[0].Vec, limits.Dim)
	require.Len(t, a[0].VecBytes, 4*limits.Dim)
	require.NotEqual(t, a[0].Body, a[1].Body)
	require.Equal(t, limits.QueryTerms(4), limits.QueryTerms(4))
}

// Index and Rebuild fill both sidecars with every document, and the
// queries find them: the raw limits do the work they are timed on.
func TestIndexRebuildAndQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	docs := limits.Docs(120)
	for _, fill := range []struct {
		name string
		fn   func(context.Context, *sql.DB, []limits.Doc) error
	}{
		{"index", func(ctx context.Context, db *sql.DB, docs []limits.Doc) error { return limits.Index(ctx, db, docs, 50) }},
		{"rebuild", limits.Rebuild},
	} {
		t.Run(fill.name, func(t *testing.T) {
			t.Parallel()
			db := open(t)
			require.NoError(t, limits.LoadSource(ctx, db, docs))
			require.NoError(t, limits.Exec(ctx, db, limits.SidecarDDL...))
			require.NoError(t, fill.fn(ctx, db, docs))
			require.Equal(t, len(docs), count(t, db, "plain_docs"))
			require.Equal(t, len(docs), count(t, db, "plain_docs_vec"))
			var ic int
			require.NoError(t, db.QueryRow("INSERT INTO plain_docs_fts(plain_docs_fts, rank) VALUES('integrity-check', 1)").Err())
			require.NoError(t, db.QueryRow("SELECT count(*) FROM plain_docs_fts WHERE plain_docs_fts MATCH ?", `"`+firstWord(docs[7].Body)+`"`).Scan(&ic))
			require.Positive(t, ic)

			ids, err := limits.KNN(ctx, db, docs[7].VecBytes, limits.QueryK)
			require.NoError(t, err)
			require.Len(t, ids, limits.QueryK)
			require.Equal(t, int64(8), ids[0], "a document's own vector is its nearest neighbour")
			ids, err = limits.Search(ctx, db, firstWord(docs[7].Body), limits.QueryK)
			require.NoError(t, err)
			require.NotEmpty(t, ids)
		})
	}
}

func firstWord(s string) string {
	for i, r := range s {
		if r == ' ' {
			return s[:i]
		}
	}
	return s
}

func TestInsertEachWritesEveryRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	require.NoError(t, limits.Exec(ctx, db, limits.BlobDDL))
	docs := limits.Docs(30)
	require.NoError(t, limits.InsertEach(ctx, db, docs))
	require.Equal(t, 30, count(t, db, "blob_docs"))
	var b []byte
	require.NoError(t, db.QueryRow("SELECT embedding FROM blob_docs WHERE id = 3").Scan(&b))
	require.Equal(t, docs[2].VecBytes, b)
}

// Every engine workload runs on the pure-Go engine and returns a positive
// figure; LookupWorkload finds each by its ID.
func TestEngineWorkloadsRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, w := range limits.EngineWorkloads() {
		t.Run(w.ID, func(t *testing.T) {
			t.Parallel()
			got, ok := limits.LookupWorkload(w.ID)
			require.True(t, ok)
			require.Equal(t, w.Title, got.Title)
			v, err := w.Run(ctx, open(t), 40)
			require.NoError(t, err)
			require.Positive(t, v)
		})
	}
	w, ok := limits.LookupWorkload("insert-each")
	require.True(t, ok)
	require.Equal(t, 2000, w.Rows(5000))
	require.Equal(t, 40, w.Rows(40))
	_, ok = limits.LookupWorkload("nope")
	require.False(t, ok)
}
