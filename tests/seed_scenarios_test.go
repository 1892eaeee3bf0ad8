package tests

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// The query scenarios of the seed library's vec/gorm and fts/gorm test
// suites (vecgorm_test.go, stringkey_test.go, ftsgorm_test.go), ported to
// our API: the same writes and the same expectations, with the indexer
// drained before each query. Differences in meaning are noted inline and in
// docs/MIGRATING.md.

type seedDocument struct {
	ID        uint `gorm:"primaryKey"`
	Title     string
	Embedding []float32 `gorm:"-" vec:"dim=4;metric=l2;encoding=binary"`
}

type seedWrappedDoc struct {
	ID        uint `gorm:"primaryKey"`
	Title     string
	Embedding vecsink.Embedding `vec:"dim=4;metric=l2"`
}

type seedSoftDoc struct {
	ID        uint `gorm:"primaryKey"`
	Title     string
	DeletedAt gorm.DeletedAt `gorm:"index"`
	Embedding []float32      `gorm:"-" vec:"dim=4"`
}

type seedStringKeyDoc struct {
	ID        string `gorm:"primaryKey"`
	Title     string
	DeletedAt gorm.DeletedAt `gorm:"index"`
	Embedding []float32      `gorm:"-" vec:"dim=4;table=stringkeydocs_vec"`
}

type seedArticle struct {
	ID    uint   `gorm:"primaryKey"`
	Title string `fts5:"tokenize=porter+unicode61"`
	Body  string `fts5:"tokenize=porter+unicode61"`
}

type seedSoftArticle struct {
	ID        uint   `gorm:"primaryKey"`
	Title     string `fts5:"tokenize=porter+unicode61"`
	DeletedAt gorm.DeletedAt
}

// seedDB opens a database with the plugin, migrates models and returns the
// indexer used to apply the writes.
func seedDB(t *testing.T, models ...any) (*gorm.DB, *indexer.Indexer) {
	t.Helper()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, models...))
	ix, err := indexer.New(db)
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return db, ix
}

func TestSeedVecScenarios(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, ix := seedDB(t, &seedDocument{}, &seedWrappedDoc{}, &seedSoftDoc{}, &seedStringKeyDoc{})
	sync := func() { require.NoError(t, ix.Sync(ctx)) }

	// TestEmbeddingWrapper_NoGormIgnoreNeeded, TestEmbeddingWrapper_NoSourceColumn
	require.NoError(t, db.Create(&seedWrappedDoc{Title: "wrapped", Embedding: vecsink.Embedding{1, 0, 0, 0}}).Error)
	sync()
	w, err := vecsink.KNN[seedWrappedDoc](ctx, db, []float32{1, 0, 0, 0}, 1)
	require.NoError(t, err)
	require.Len(t, w, 1)
	require.Equal(t, "wrapped", w[0].Model.Title)
	cols, err := db.Migrator().ColumnTypes(&seedWrappedDoc{})
	require.NoError(t, err)
	for _, c := range cols {
		require.NotEqual(t, "embedding", c.Name())
	}

	// TestKNN_BasicRanking
	docs := []seedDocument{
		{Title: "north", Embedding: []float32{0, 1, 0, 0}},
		{Title: "east", Embedding: []float32{1, 0, 0, 0}},
		{Title: "south", Embedding: []float32{0, -1, 0, 0}},
		{Title: "west", Embedding: []float32{-1, 0, 0, 0}},
	}
	require.NoError(t, db.Create(&docs).Error)
	sync()
	r, err := vecsink.KNN[seedDocument](ctx, db, []float32{0, 0.99, 0, 0}, 1)
	require.NoError(t, err)
	require.Len(t, r, 1)
	require.Equal(t, "north", r[0].Model.Title)

	// TestUpdate_RewritesSidecar (Save of a new embedding)
	docs[1].Embedding = []float32{0, 0, 1, 0}
	require.NoError(t, db.Save(&docs[1]).Error)
	sync()
	r, err = vecsink.KNN[seedDocument](ctx, db, []float32{0, 0, 0.99, 0}, 1)
	require.NoError(t, err)
	require.Equal(t, docs[1].ID, r[0].Model.ID)

	// TestDelete_RemovesFromSidecar
	require.NoError(t, db.Delete(&docs[0]).Error)
	sync()
	r, err = vecsink.KNN[seedDocument](ctx, db, []float32{0, 0.99, 0, 0}, 4)
	require.NoError(t, err)
	require.Len(t, r, 3)
	for _, x := range r {
		require.NotEqual(t, "north", x.Model.Title)
	}

	// TestSoftDelete_ExcludedFromKNNByDefault
	soft := []seedSoftDoc{{Title: "alive", Embedding: []float32{1, 0, 0, 0}}, {Title: "dead", Embedding: []float32{0.99, 0, 0, 0}}}
	require.NoError(t, db.Create(&soft).Error)
	require.NoError(t, db.Delete(&soft[1]).Error)
	sync()
	s, err := vecsink.KNN[seedSoftDoc](ctx, db, []float32{1, 0, 0, 0}, 2)
	require.NoError(t, err)
	require.Len(t, s, 1)
	require.Equal(t, "alive", s[0].Model.Title)
	// the seed needs db.Unscoped() as well; IncludeDeleted alone suffices here
	s, err = vecsink.KNN[seedSoftDoc](ctx, db, []float32{1, 0, 0, 0}, 2, vecsink.IncludeDeleted())
	require.NoError(t, err)
	require.Len(t, s, 2)

	// TestStringPK_KNN, TestStringPK_UpdateDelete, TestStringPK_SoftDelete
	sk := []seedStringKeyDoc{{ID: "alpha", Embedding: []float32{1, 0, 0, 0}}, {ID: "beta", Embedding: []float32{0, 1, 0, 0}}, {ID: "gamma", Embedding: []float32{0, 0, 1, 0}}}
	require.NoError(t, db.Create(&sk).Error)
	sync()
	h, err := vecsink.KNN[seedStringKeyDoc](ctx, db, []float32{1, 0, 0, 0}, 2)
	require.NoError(t, err)
	require.Len(t, h, 2)
	require.Equal(t, "alpha", h[0].Model.ID)
	require.Zero(t, h[0].Distance)
	sk[1].Embedding = []float32{1, 0, 0, 0}
	require.NoError(t, db.Save(&sk[1]).Error)
	require.NoError(t, db.Unscoped().Delete(&sk[0]).Error)
	require.NoError(t, db.Delete(&sk[2]).Error) // soft
	sync()
	h, err = vecsink.KNN[seedStringKeyDoc](ctx, db, []float32{1, 0, 0, 0}, 5)
	require.NoError(t, err)
	require.Len(t, h, 1)
	require.Equal(t, "beta", h[0].Model.ID)
}

func TestSeedFTSScenarios(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, ix := seedDB(t, &seedArticle{}, &seedSoftArticle{})
	sync := func() { require.NoError(t, ix.Sync(ctx)) }

	// TestCreate_IndexedByTrigger
	a := seedArticle{Title: "Hello world", Body: "The quick brown fox"}
	require.NoError(t, db.Create(&a).Error)
	sync()
	hits, err := ftssink.Search[seedArticle](ctx, db, ftssink.Term("fox"))
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, "Hello world", hits[0].Model.Title)

	// TestUpdate_RefreshesIndex
	b := seedArticle{Title: "old title", Body: "old body"}
	require.NoError(t, db.Create(&b).Error)
	b.Body = "the wolf jumped"
	require.NoError(t, db.Save(&b).Error)
	sync()
	hits, err = ftssink.Search[seedArticle](ctx, db, ftssink.Term("wolf"))
	require.NoError(t, err)
	require.Len(t, hits, 1)
	hits, err = ftssink.Search[seedArticle](ctx, db, ftssink.Term("old body"))
	require.NoError(t, err)
	require.Empty(t, hits)

	// TestDelete_RemovesFromIndex
	require.NoError(t, db.Delete(&b).Error)
	sync()
	hits, err = ftssink.Search[seedArticle](ctx, db, ftssink.Term("wolf"))
	require.NoError(t, err)
	require.Empty(t, hits)

	// TestSearch_WithSnippetAndHighlight
	require.NoError(t, db.Create(&seedArticle{Title: "Quick", Body: "The quick brown cat jumps over the lazy dog"}).Error)
	sync()
	hits, err = ftssink.Search[seedArticle](ctx, db, ftssink.Term("cat"),
		ftssink.WithSnippet("body", "<b>", "</b>", "…", 5), ftssink.WithHighlight("body", "[", "]"))
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Contains(t, hits[0].Snippets["body"], "<b>cat</b>")
	require.Contains(t, hits[0].Highlights["body"], "[cat]")

	// TestSearch_RankingWeights
	require.NoError(t, db.Create(&[]seedArticle{{Title: "otter", Body: "tail mention"}, {Title: "tail", Body: "otter is here"}}).Error)
	sync()
	hits, err = ftssink.Search[seedArticle](ctx, db, ftssink.Term("otter"), ftssink.WithRanking(10, 0.1))
	require.NoError(t, err)
	require.Equal(t, "otter", hits[0].Model.Title)
	hits, err = ftssink.Search[seedArticle](ctx, db, ftssink.Term("otter"), ftssink.WithRanking(0.1, 10))
	require.NoError(t, err)
	require.Equal(t, "tail", hits[0].Model.Title)

	// TestSoftDelete_ExcludedFromSearch
	alive, dead := seedSoftArticle{Title: "fox alive"}, seedSoftArticle{Title: "fox dead"}
	require.NoError(t, db.Create(&alive).Error)
	require.NoError(t, db.Create(&dead).Error)
	require.NoError(t, db.Delete(&dead).Error)
	sync()
	sh, err := ftssink.Search[seedSoftArticle](ctx, db, ftssink.Term("fox"))
	require.NoError(t, err)
	require.Len(t, sh, 1)
	require.Equal(t, "fox alive", sh[0].Model.Title)
	sh, err = ftssink.Search[seedSoftArticle](ctx, db, ftssink.Term("fox"), ftssink.IncludeDeleted())
	require.NoError(t, err)
	require.Len(t, sh, 2)

	// TestMigrate_BackfillsExistingRows: rows written before Migrate are
	// queued by Migrate and indexed by the indexer (tests/capture_test.go,
	// TestCaptureBackfillOnMigrate); rows written with raw SQL afterwards
	// are captured by the triggers, like the seed's.
	require.NoError(t, db.Exec(`INSERT INTO seed_articles (title, body) VALUES ('pre', 'heron')`).Error)
	sync()
	hits, err = ftssink.Search[seedArticle](ctx, db, ftssink.Term("heron"))
	require.NoError(t, err)
	require.Len(t, hits, 1, "a raw INSERT is captured")
	err = ix.Rebuild(ctx, "seed_articles")
	require.NoError(t, err)
	hits, err = ftssink.Search[seedArticle](ctx, db, ftssink.Term("heron"))
	require.NoError(t, err)
	require.Len(t, hits, 1)

	// TestDropSidecar_RemovesTriggersAndTable
	require.NoError(t, gormplugin.DropSidecar(db, &seedArticle{}))
	require.False(t, db.Migrator().HasTable("seed_articles_fts"))
}
