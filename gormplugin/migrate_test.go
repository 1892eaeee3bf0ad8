package gormplugin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

func ddl(t *testing.T, db *gorm.DB, table string) string {
	t.Helper()
	var s string
	require.NoError(t, db.Raw("SELECT sql FROM sqlite_master WHERE name = ?", table).Scan(&s).Error)
	return s
}

func columns(t *testing.T, db *gorm.DB, table string) []string {
	t.Helper()
	var cols []string
	require.NoError(t, db.Raw("SELECT name FROM pragma_table_info(?)", table).Scan(&cols).Error)
	return cols
}

func TestMigrateCreatesSidecarsAndRegistry(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	require.Equal(t, `CREATE VIRTUAL TABLE "articles_vec" USING vec0(embedding float[3] distance_metric=cosine, deleted integer, lang text)`, ddl(t, db, "articles_vec"))
	require.Equal(t, `CREATE VIRTUAL TABLE "articles_fts" USING fts5("title", "body", "deleted_at" UNINDEXED, content='articles', content_rowid='id', tokenize='porter unicode61')`, ddl(t, db, "articles_fts"))
	require.Equal(t, `CREATE VIRTUAL TABLE "notes_vec" USING vec0(id text primary key, embedding float[2] distance_metric=l2)`, ddl(t, db, "notes_vec"))
	require.Equal(t, `CREATE VIRTUAL TABLE "notes_fts" USING fts5("content", tokenize='unicode61')`, ddl(t, db, "notes_fts"))
	require.Equal(t, `CREATE VIRTUAL TABLE "comments_fts" USING fts5("text", tokenize='unicode61')`, ddl(t, db, "comments_fts"))
	require.Empty(t, ddl(t, db, "plains_fts"))
	require.NotContains(t, columns(t, db, "articles"), "embedding")
	require.NotContains(t, columns(t, db, "notes"), "vec")

	spec, err := outbox.LoadSpec(ctx, db.Statement.ConnPool, "articles")
	require.NoError(t, err)
	require.Equal(t, &outbox.Spec{
		Version: outbox.SpecVersion, Source: "articles", Model: "Article", Key: "id", KeyType: outbox.KeyInteger, SoftDelete: "deleted_at",
		Vec: &outbox.VecSpec{Table: "articles_vec", Column: "embedding", Field: "Embedding", Dim: 3, Metric: "cosine", Encoding: "binary",
			Metadata: []outbox.MetaCol{{Name: "lang", Type: "text"}}},
		FTS: &outbox.FTSSpec{Table: "articles_fts", Mode: outbox.ModeExternal, Tokenize: "porter unicode61", Columns: []outbox.FTSCol{
			{Name: "title", Source: "title", Field: "Title"}, {Name: "body", Source: "body", Field: "Body"}}},
	}, spec)
	spec, err = outbox.LoadSpec(ctx, db.Statement.ConnPool, "notes")
	require.NoError(t, err)
	require.Equal(t, &outbox.Spec{
		Version: outbox.SpecVersion, Source: "notes", Model: "Note", Key: "slug", KeyType: outbox.KeyText,
		Vec: &outbox.VecSpec{Table: "notes_vec", Column: "embedding", Field: "Vec", Dim: 2, Metric: "l2", Encoding: "binary"},
		FTS: &outbox.FTSSpec{Table: "notes_fts", Mode: outbox.ModeInTable, Tokenize: "unicode61", Columns: []outbox.FTSCol{{Name: "content", Source: "text", Field: "Text"}}},
	}, spec)
	_, err = outbox.LoadSpec(ctx, db.Statement.ConnPool, "plains")
	require.ErrorIs(t, err, outbox.ErrNotRegistered)

	// External content reads the source table through the sidecar.
	require.NoError(t, db.Create(&Article{Title: "running dogs"}).Error)
	require.NoError(t, db.Exec("INSERT INTO articles_fts(articles_fts) VALUES('rebuild')").Error)
	var n int
	require.NoError(t, db.Raw("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'run'").Scan(&n).Error)
	require.Equal(t, 1, n)
}

// Modes, metadata types and options.
type Doc struct {
	ID        int64
	Title     string `fts5:"contentless=true;prefix=2,3;detail=column;table=doc_text"`
	Tags      string `fts5:"column=labels"`
	Year      int
	Score     float32
	Draft     bool
	Embedding []float32 `gorm:"-" vec:"dim=4;metric=dot;encoding=json;table=doc_vectors;column=v;metadata=year,score,Draft"`
	DeletedAt gorm.DeletedAt
}

func TestMigrateModesAndMetadata(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &Doc{}))
	require.Equal(t, `CREATE VIRTUAL TABLE "doc_vectors" USING vec0(v float[4] distance_metric=l2, deleted integer, year integer, score float, draft boolean)`, ddl(t, db, "doc_vectors"))
	require.Equal(t, `CREATE VIRTUAL TABLE "doc_text" USING fts5("title", "labels", deleted UNINDEXED, content='', contentless_delete=1, contentless_unindexed=1, tokenize='unicode61', prefix='2 3', detail=column)`, ddl(t, db, "doc_text"))
	require.NoError(t, db.Create(&Doc{Title: "x", Embedding: []float32{1, 2, 3, 4}}).Error)
	require.NoError(t, db.Model(&Doc{ID: 1}).Update("year", 2024).Error) // metadata column: an event
	require.NoError(t, db.Model(&Doc{ID: 1}).Update("draft", true).Error)
	require.Equal(t, []outbox.Event{
		ev("docs", int64(1), outbox.OpInsert, []byte("[1,2,3,4]")),
		ev("docs", int64(1), outbox.OpUpdate, nil),
		ev("docs", int64(1), outbox.OpUpdate, nil),
	}, events(t, db))
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	db := setup(t)
	type row struct {
		Source    string
		Spec      string
		UpdatedAt int64
	}
	var before, after []row
	require.NoError(t, db.Raw("SELECT * FROM oi_registry ORDER BY source").Scan(&before).Error)
	var schemaBefore, schemaAfter []string
	require.NoError(t, db.Raw("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").Scan(&schemaBefore).Error)
	require.NoError(t, gormplugin.Migrate(db, &Article{}, &Comment{}, &Note{}, &Plain{}))
	require.NoError(t, db.Raw("SELECT * FROM oi_registry ORDER BY source").Scan(&after).Error)
	require.NoError(t, db.Raw("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").Scan(&schemaAfter).Error)
	require.Equal(t, before, after)
	require.Equal(t, schemaBefore, schemaAfter)
	require.Len(t, after, 3)
}

// ArticleV2 is Article with a changed metric and tokenizer.
type ArticleV2 struct {
	ID        uint
	Title     string `fts5:"tokenize=trigram"`
	Body      string `fts5:""`
	Lang      string
	Views     int
	Embedding vecsink.Embedding `vec:"dim=3;metric=l2;metadata=lang"`
	UpdatedAt int64
	DeletedAt gorm.DeletedAt
}

func (ArticleV2) TableName() string { return "articles" }

func TestSpecChange(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	require.NoError(t, db.Create(&Article{Title: "kept", Embedding: vecsink.Embedding{1, 2, 3}}).Error)

	err := gormplugin.Migrate(db, &ArticleV2{})
	require.ErrorIs(t, err, gormplugin.ErrSpecChanged)
	for _, want := range []string{"articles", `vec metric "cosine" → "l2"`, `fts5 tokenize "porter unicode61" → "trigram"`, "UpdateSpec", "Rebuild", "indexer rebuild --table articles"} {
		require.Contains(t, err.Error(), want)
	}
	spec, err := outbox.LoadSpec(ctx, db.Statement.ConnPool, "articles")
	require.NoError(t, err)
	require.Equal(t, "cosine", spec.Vec.Metric, "nothing changed")
	require.Contains(t, ddl(t, db, "articles_vec"), "distance_metric=cosine")

	require.NoError(t, gormplugin.UpdateSpec(db, &ArticleV2{}))
	spec, err = outbox.LoadSpec(ctx, db.Statement.ConnPool, "articles")
	require.NoError(t, err)
	require.Equal(t, "l2", spec.Vec.Metric)
	require.Equal(t, "trigram", spec.FTS.Tokenize)
	require.Contains(t, ddl(t, db, "articles_vec"), "distance_metric=l2")
	require.Contains(t, ddl(t, db, "articles_fts"), "tokenize='trigram'")
	require.Len(t, events(t, db), 1, "the log (and its vectors) is kept for the rebuild")
	require.NoError(t, gormplugin.Migrate(db, &ArticleV2{}), "the new spec is now the registered one")
}

// ArticleV3 changes a column type, which gorm's SQLite migrator applies by
// recreating the table.
type ArticleV3 struct {
	ID        uint
	Title     string `fts5:"tokenize=porter+unicode61"`
	Body      string `fts5:""`
	Lang      string
	Views     string
	Extra     string
	Embedding vecsink.Embedding `vec:"dim=3;metric=cosine;metadata=lang"`
	UpdatedAt time.Time
	DeletedAt gorm.DeletedAt
}

func (ArticleV3) TableName() string { return "articles" }

func TestAutoMigrateRecreateKeepsEverything(t *testing.T) {
	t.Parallel()
	db := setup(t)
	require.NoError(t, db.Create(&Article{Title: "running", Embedding: vecsink.Embedding{1, 2, 3}}).Error)
	vecDDL, ftsDDL := ddl(t, db, "articles_vec"), ddl(t, db, "articles_fts")
	require.NoError(t, gormplugin.Migrate(db, &ArticleV3{}))
	require.Contains(t, columns(t, db, "articles"), "extra")
	require.NotContains(t, columns(t, db, "articles"), "embedding")
	require.Equal(t, vecDDL, ddl(t, db, "articles_vec"))
	require.Equal(t, ftsDDL, ddl(t, db, "articles_fts"))
	require.Len(t, events(t, db), 1)
	require.NoError(t, db.Exec("INSERT INTO articles_fts(articles_fts) VALUES('rebuild')").Error)
	require.NoError(t, db.Exec("INSERT INTO articles_fts(articles_fts, rank) VALUES('integrity-check', 1)").Error)
	require.NoError(t, db.Model(&ArticleV3{ID: 1}).Update("title", "walking").Error)
	require.Equal(t, ev("articles", int64(1), outbox.OpUpdate, nil, "running", ""), events(t, db)[1])
}

func TestAutoMigrateNeverCreatesTheVectorColumn(t *testing.T) {
	t.Parallel()
	// With the plugin installed, a plain AutoMigrate hides the vector too.
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, db.AutoMigrate(&Article{}))
	require.NotContains(t, columns(t, db, "articles"), "embedding")
}

// Without the plugin no write would be captured: Migrate and UpdateSpec
// refuse, say what to do, and create nothing.
func TestMigrateWithoutPluginFails(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	for _, f := range []func(*gorm.DB, ...any) error{gormplugin.Migrate, gormplugin.UpdateSpec} {
		err := f(db, &Article{}, &Plain{})
		require.ErrorIs(t, err, gormplugin.ErrPluginNotInstalled)
		require.Contains(t, err.Error(), "db.Use(gormplugin.New())")
	}
	var n int
	require.NoError(t, db.Raw("SELECT count(*) FROM sqlite_master").Scan(&n).Error)
	require.Zero(t, n, "nothing was created")

	// A plugin installed on another *gorm.DB does not count; on this one
	// (or a session of it) it does.
	other := testdb.New(t)
	require.NoError(t, other.Use(gormplugin.New()))
	require.ErrorIs(t, gormplugin.Migrate(db, &Article{}), gormplugin.ErrPluginNotInstalled)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db.Session(&gorm.Session{}).WithContext(context.Background()), &Article{}))
	require.NotContains(t, columns(t, db, "articles"), "embedding")
	require.True(t, strings.HasPrefix(ddl(t, db, "articles_vec"), "CREATE VIRTUAL TABLE"))
	require.NoError(t, db.Create(&Article{Title: "captured"}).Error)
	require.Len(t, events(t, db), 1)
}
