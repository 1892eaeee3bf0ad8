package tests

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Models whose tags try to smuggle SQL or odd identifiers into the sidecar
// DDL. Each must be rejected by Migrate with ErrBadTag, writing nothing.
type (
	relHostileSemicolon struct {
		ID   int64
		Text string `fts5:"table=x;drop table y"`
	}
	relHostileQuote struct {
		ID   int64
		Text string `fts5:"table=x\"); DROP TABLE oi_events; --"`
	}
	relHostileSingleQuote struct {
		ID   int64
		Text string `fts5:"tokenize=unicode61'); DROP TABLE oi_events; --"`
	}
	relHostileLookalike struct {
		ID   int64
		Text string `fts5:"table=аrticles_fts"` // Cyrillic а
	}
	relHostileLongName struct {
		ID  int64
		Vec vecsink.Embedding `vec:"dim=2;table=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"`
	}
	relHostileColumn struct {
		ID   int64
		Text string `fts5:"column=a b"`
	}
	relHostileVecColumn struct {
		ID  int64
		Vec vecsink.Embedding `vec:"dim=2;column=embedding float[2]); DROP TABLE oi_events; --"`
	}
	relHostileMetadata struct {
		ID  int64
		Cat string
		Vec vecsink.Embedding `vec:"dim=2;metadata=cat text) --"`
	}
	relHostileMetric struct {
		ID  int64
		Vec vecsink.Embedding `vec:"dim=2;metric=l2) --"`
	}
	relHostilePrefix struct {
		ID   int64
		Text string `fts5:"prefix=2) --"`
	}
)

// TestHostileTagIdentifiersRejected checks that identifiers and values
// taken from tags cannot smuggle SQL: Migrate rejects them, naming the
// model, and creates no table, sidecar or registry row.
func TestHostileTagIdentifiersRejected(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	schema := func() string {
		var names []string
		require.NoError(t, db.Raw(`SELECT name FROM sqlite_master ORDER BY name`).Scan(&names).Error)
		return strings.Join(names, ",")
	}
	before := schema()
	for _, m := range []any{&relHostileSemicolon{}, &relHostileQuote{}, &relHostileSingleQuote{}, &relHostileLookalike{},
		&relHostileLongName{}, &relHostileColumn{}, &relHostileVecColumn{}, &relHostileMetadata{}, &relHostileMetric{}, &relHostilePrefix{}} {
		err := gormplugin.Migrate(db, m)
		require.ErrorIs(t, err, gormplugin.ErrBadTag, "%T", m)
		t.Logf("hostile: %T: %v", m, err)
		require.Equal(t, before, schema(), "%T: Migrate wrote to the schema", m)
	}
}

// TestHostileFilterArgsAreBound checks that WithFilter's arguments are
// bound, never pasted into the SQL: an injection attempt in an argument is
// just a value that matches nothing.
func TestHostileFilterArgsAreBound(t *testing.T) {
	t.Parallel()
	db := reliab.Prepare(t, testdb.Path(t))
	ctx := context.Background()
	require.NoError(t, db.Create(&reliab.Article{Title: "a", Cat: 1, Embedding: vecsink.Embedding{1, 0, 0, 0}}).Error)
	require.NoError(t, db.Create(&reliab.Article{Title: "b", Cat: 2, Embedding: vecsink.Embedding{0, 1, 0, 0}}).Error)
	ix, err := indexer.New(db)
	require.NoError(t, err)
	defer ix.Close()
	_, err = ix.Drain(ctx)
	require.NoError(t, err)

	for _, arg := range []any{"0 OR 1=1", "x) OR (1=1", "'; DROP TABLE articles; --", "0' OR '1'='1"} {
		res, err := vecsink.KNN[reliab.Article](ctx, db, []float32{1, 0, 0, 0}, 5, vecsink.WithFilter("cat = ?", arg))
		require.NoError(t, err)
		require.Empty(t, res, "argument %q matched", arg)
	}
	// sqlite-vec converts a text argument compared with an integer metadata
	// column to an integer (its numeric prefix): "1 OR 1=1" is the value 1,
	// which matches cat = 1 and only it.
	res, err := vecsink.KNN[reliab.Article](ctx, db, []float32{1, 0, 0, 0}, 5, vecsink.WithFilter("cat = ?", "1 OR 1=1"))
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.EqualValues(t, 1, res[0].Model.Cat)
	var n int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM articles`).Scan(&n).Error)
	require.EqualValues(t, 2, n, "the source table survived")
}

// TestHostileVectorsRejected checks that vectors of the wrong length or
// with NaN or Inf fail the gorm call with ErrInvalidVector, writing neither
// the row nor an event.
func TestHostileVectorsRejected(t *testing.T) {
	t.Parallel()
	db := reliab.Prepare(t, testdb.Path(t))
	require.NoError(t, db.Create(&reliab.Article{Title: "ok", Embedding: vecsink.Embedding{1, 2, 3, 4}}).Error)
	counts := func() (rows, events int64) {
		require.NoError(t, db.Raw(`SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM oi_events)`).Row().Scan(&rows, &events))
		return
	}
	r0, e0 := counts()
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, v := range []vecsink.Embedding{{1, 2, 3}, {1, 2, 3, 4, 5}, {1, nan, 3, 4}, {inf, 0, 0, 0}, {0, 0, 0, -inf}} {
		err := db.Create(&reliab.Article{Title: "bad", Embedding: v}).Error
		require.ErrorIs(t, err, gormplugin.ErrInvalidVector, "create with %v", v)
		require.Contains(t, err.Error(), "Embedding")
		err = db.Model(&reliab.Article{ID: 1}).Update("embedding", v).Error
		require.ErrorIs(t, err, gormplugin.ErrInvalidVector, "update with %v", v)
		err = db.Create(&reliab.Note{ID: "bad", Text: "bad", Embedding: v}).Error
		require.ErrorIs(t, err, gormplugin.ErrInvalidVector, "note with %v", v)
	}
	r1, e1 := counts()
	require.Equal(t, r0, r1, "rows written")
	require.Equal(t, e0, e1, "events written")
}

// TestHostileText indexes oversized text (5 MB), invalid UTF-8, empty
// strings, NUL bytes and FTS5 syntax characters in every FTS mode, and
// checks that they are indexed exactly (search finds them) and that no
// sidecar is corrupted.
func TestHostileText(t *testing.T) {
	t.Parallel()
	db := reliab.Prepare(t, testdb.Path(t))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	ctx := context.Background()
	big := strings.Repeat("filler ", 5<<20/7) + "needleatend"
	texts := []string{big, "", "bad \xff\xfe utf8 \xc3 tail", "nul\x00byte", `"quoted" AND OR NOT * ^ ( ) : -col NEAR(a b)`, strings.Repeat("x", 100000)}
	for i, s := range texts {
		require.NoError(t, db.Create(&reliab.Article{Title: s, Body: s, Embedding: vecsink.Embedding{1, 0, 0, float32(i)}}).Error)
		require.NoError(t, db.Create(&reliab.Note{ID: "t" + string(rune('a'+i)), Text: s}).Error)
		require.NoError(t, db.Create(&reliab.Memo{Text: s}).Error)
	}
	ix, err := indexer.New(db)
	require.NoError(t, err)
	defer ix.Close()
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	reliab.Integrity(t, sqlDB)
	var docs int64
	require.NoError(t, sqlDB.QueryRow(`SELECT (SELECT count(*) FROM articles_fts_docsize) + (SELECT count(*) FROM notes_fts_docsize) + (SELECT count(*) FROM memos_fts_docsize)`).Scan(&docs))
	require.EqualValues(t, 3*len(texts), docs)

	for _, term := range []string{"needleatend", "utf8", "tail", "quoted", "near"} {
		hits, err := ftssink.Search[reliab.Article](ctx, db, ftssink.Term(term))
		require.NoError(t, err, term)
		require.NotEmpty(t, hits, "articles: %q not found", term)
		notes, err := ftssink.Search[reliab.Note](ctx, db, ftssink.Term(term))
		require.NoError(t, err, term)
		require.NotEmpty(t, notes, "notes: %q not found", term)
	}
	// Every query built from hostile strings is valid FTS5.
	for _, s := range texts[1:] {
		_, err := ftssink.Search[reliab.Article](ctx, db, ftssink.Phrase(s))
		require.NoError(t, err, "phrase %q", s)
	}
	// Updating and deleting the big and the odd rows keeps the index exact.
	require.NoError(t, db.Model(&reliab.Article{ID: 1}).Update("body", "small now").Error)
	require.NoError(t, db.Unscoped().Delete(&reliab.Article{}, 3).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	reliab.Integrity(t, sqlDB)
	hits, err := ftssink.Search[reliab.Article](ctx, db, ftssink.Term("utf8"))
	require.NoError(t, err)
	require.Empty(t, hits, "a deleted row is still found")
	var dead int64
	require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM oi_deadletters`).Scan(&dead))
	require.Zero(t, dead)
}
