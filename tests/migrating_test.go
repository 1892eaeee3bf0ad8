package tests

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/hybrid"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// The seed library's quick starts (vec/gorm, fts/gorm, fusion), converted
// as docs/MIGRATING.md shows: the imports and package names change, the
// two plugins become one, and one Sync is added before the queries.

type migDocument struct {
	ID        uint `gorm:"primaryKey"`
	Title     string
	Embedding vecsink.Embedding `vec:"dim=4;metric=cosine"`
}

type migArticle struct {
	ID    uint   `gorm:"primaryKey"`
	Title string `fts5:"tokenize=porter+unicode61"`
	Body  string `fts5:"tokenize=porter+unicode61"`
}

func TestMigratingQuickStarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t) // seed: gorm.Open(sqlitegorm.Open("app.db"), &gorm.Config{})

	// seed: db.Use(vecgorm.Plugin()); db.Use(ftsgorm.Plugin())
	require.NoError(t, db.Use(gormplugin.New(gormplugin.WithNotify(indexer.Wake))))
	// seed: vecgorm.Migrate(db, &Document{}); ftsgorm.Migrate(db, &Article{})
	require.NoError(t, gormplugin.Migrate(db, &migDocument{}, &migArticle{}))
	w, err := indexer.Start(ctx, db) // added: the indexer
	require.NoError(t, err)
	defer w.Close()

	require.NoError(t, db.Create(&[]migDocument{
		{Title: "north", Embedding: vecsink.Embedding{1, 0, 0, 0}},
		{Title: "north-east", Embedding: vecsink.Embedding{1, 1, 0, 0}},
		{Title: "east", Embedding: vecsink.Embedding{0, 1, 0, 0}},
	}).Error)
	require.NoError(t, db.Create(&migArticle{Title: "Hello", Body: "the quick brown fox"}).Error)
	require.NoError(t, db.Create(&migArticle{Title: "Bye", Body: "the lazy dog"}).Error)

	require.NoError(t, w.Sync(ctx)) // added: read-your-writes

	// seed: vecgorm.KNN[Document](ctx, db, queryVec, 5)
	results, err := vecsink.KNN[migDocument](ctx, db, []float32{1, 0.1, 0, 0}, 5)
	require.NoError(t, err)
	require.Len(t, results, 3)
	require.Equal(t, "north", results[0].Model.Title)
	require.Equal(t, "east", results[2].Model.Title)

	// seed: ftsgorm.Search[Article](ctx, db, fts.Term("fox"), ftsgorm.WithSnippet(…),
	// ftsgorm.WithHighlight(…), ftsgorm.WithRanking(2.0, 1.0))
	hits, err := ftssink.Search[migArticle](ctx, db, ftssink.Term("fox"),
		ftssink.WithSnippet("body", "<b>", "</b>", "…", 8),
		ftssink.WithHighlight("body", "[", "]"),
		ftssink.WithRanking(2.0, 1.0))
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, "the quick brown <b>fox</b>", hits[0].Snippets["body"]) // seed: hits[0].Snippet
	require.Equal(t, "the quick brown [fox]", hits[0].Highlights["body"])

	// seed: fusion.RRF2(vecKeys, textKeys)
	fused, err := hybrid.RRF([][]int64{{1, 2, 3}, {2}})
	require.NoError(t, err)
	require.Equal(t, int64(2), fused[0].Key)

	// seed: db.Migrator().DropTable(&Document{}) drops the sidecar too
	require.NoError(t, db.Migrator().DropTable(&migDocument{}, &migArticle{}))
	for _, tbl := range []string{"mig_documents_vec", "mig_articles_fts"} {
		require.False(t, db.Migrator().HasTable(tbl), tbl)
	}
}
