package gormplugin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// seed creates three articles and empties the outbox.
func seed(t *testing.T, db *gorm.DB) []Article {
	t.Helper()
	as := []Article{
		{Title: "a1", Body: "b1", Lang: "en", Embedding: vecsink.Embedding{1, 0, 0}},
		{Title: "a2", Body: "b2", Lang: "en"},
		{Title: "a3", Body: "b3", Lang: "fr"},
	}
	require.NoError(t, db.Create(&as).Error)
	clearEvents(t, db)
	return as
}

func TestUpdateIndexedColumns(t *testing.T) {
	t.Parallel()
	db := setup(t)
	as := seed(t, db)
	a := &as[0]
	require.NoError(t, db.Model(a).Update("title", "t1").Error)
	require.NoError(t, db.Model(a).Updates(Article{Body: "x1"}).Error)
	require.NoError(t, db.Model(a).Updates(map[string]any{"title": "t2", "views": 5}).Error)
	require.NoError(t, db.Model(a).UpdateColumn("body", "x2").Error)
	require.NoError(t, db.Model(a).UpdateColumns(Article{Title: "t3"}).Error)
	require.NoError(t, db.Model(a).Update("lang", "de").Error) // a vec0 metadata column
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpUpdate, nil, "a1", "b1"),
		ev("articles", int64(1), outbox.OpUpdate, nil, "t1", "b1"),
		ev("articles", int64(1), outbox.OpUpdate, nil, "t1", "x1"),
		ev("articles", int64(1), outbox.OpUpdate, nil, "t2", "x1"),
		ev("articles", int64(1), outbox.OpUpdate, nil, "t2", "x2"),
		ev("articles", int64(1), outbox.OpUpdate, nil, "t3", "x2"),
	}, events(t, db))

	// In-table FTS and string keys: no before-image.
	require.NoError(t, db.Create(&Note{Slug: "n", Text: "one"}).Error)
	clearEvents(t, db)
	require.NoError(t, db.Model(&Note{Slug: "n"}).Update("text", "two").Error)
	require.Equal(t, []outbox.Event{ev("notes", "n", outbox.OpUpdate, nil)}, events(t, db))
}

func TestUpdateUnindexedIsFree(t *testing.T) {
	t.Parallel()
	db := setup(t)
	as := seed(t, db)
	var log []string
	s := counted(db, &log)
	require.NoError(t, s.Model(&as[0]).Update("views", 1).Error)
	require.NoError(t, s.Model(&as[0]).Updates(map[string]any{"views": 2}).Error)
	require.NoError(t, s.Model(&Article{}).Where("lang = ?", "en").Update("views", gorm.Expr("views + 1")).Error)
	require.NoError(t, s.Model(&Note{}).Where("1 = 1").Update("score", 1.5).Error)
	require.Empty(t, events(t, db))
	require.Len(t, log, 4, "one statement per update, no event, no read: %q", log)
	for _, q := range log {
		require.True(t, strings.HasPrefix(q, "UPDATE"), q)
	}
}

func TestUpdateOnlyTheVector(t *testing.T) {
	t.Parallel()
	db := setup(t)
	as := seed(t, db)
	a := &as[1]
	v := func(x ...float32) []byte { return vec(t, 3, "binary", x...) }
	require.NoError(t, db.Model(a).Update("embedding", vecsink.Embedding{0, 1, 0}).Error)
	require.Equal(t, vecsink.Embedding{0, 1, 0}, a.Embedding, "the model is updated like for any other field")
	require.NoError(t, db.Model(a).Update("Embedding", []float32{0, 2, 0}).Error)
	require.NoError(t, db.Model(a).Updates(&Article{Embedding: vecsink.Embedding{0, 3, 0}}).Error)
	require.NoError(t, db.Model(a).Updates(map[string]any{"embedding": nil}).Error)                    // empty: leaves it alone
	require.NoError(t, db.Model(a).Updates(map[string]any{"embedding": gormplugin.ClearVector}).Error) // removes it
	a.Embedding = vecsink.Embedding{0, 4, 0}
	require.NoError(t, db.Save(a).Error)
	require.NoError(t, db.Model(a).UpdateColumn("embedding", vecsink.Embedding{0, 5, 0}).Error) // no hooks: no updated_at either
	require.NoError(t, db.Model(&Article{}).Where("lang = ?", "en").Update("embedding", vecsink.Embedding{0, 0, 6}).Error)
	// A struct update without the vector does not touch it.
	require.NoError(t, db.Model(a).Updates(&Article{Title: "new"}).Error)
	// An empty vector leaves it alone even when selected (Save of a loaded
	// model selects everything); ClearVector clears it.
	require.NoError(t, db.Model(a).Select("Embedding").Updates(&Article{}).Error)
	require.NoError(t, db.Model(a).Update("embedding", gormplugin.ClearVector).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(2), outbox.OpUpdate, v(0, 1, 0), "a2", "b2"),
		ev("articles", int64(2), outbox.OpUpdate, v(0, 2, 0), "a2", "b2"),
		ev("articles", int64(2), outbox.OpUpdate, v(0, 3, 0), "a2", "b2"),
		ev("articles", int64(2), outbox.OpUpdate, none, "a2", "b2"),
		ev("articles", int64(2), outbox.OpUpdate, v(0, 4, 0), "a2", "b2"),
		ev("articles", int64(2), outbox.OpUpdate, v(0, 5, 0), "a2", "b2"),
		ev("articles", int64(1), outbox.OpUpdate, v(0, 0, 6), "a1", "b1"),
		ev("articles", int64(2), outbox.OpUpdate, v(0, 0, 6), "a2", "b2"),
		ev("articles", int64(2), outbox.OpUpdate, nil, "a2", "b2"),
		ev("articles", int64(2), outbox.OpUpdate, none, "new", "b2"),
	}, events(t, db))

	// A model without UpdatedAt: the SET would be empty.
	require.NoError(t, db.Create(&Note{Slug: "n"}).Error)
	clearEvents(t, db)
	res := db.Model(&Note{Slug: "n"}).Update("vec", []float32{7, 7})
	require.NoError(t, res.Error)
	require.Equal(t, int64(1), res.RowsAffected)
	require.Equal(t, []outbox.Event{ev("notes", "n", outbox.OpUpdate, vec(t, 2, "binary", 7, 7))}, events(t, db))
}

func TestBatchUpdateResolvesKeysBeforeTheWrite(t *testing.T) {
	t.Parallel()
	db := setup(t)
	seed(t, db)
	// The WHERE names the column being changed: keys are read before the write.
	res := db.Model(&Article{}).Where("lang = ?", "en").Update("lang", "es")
	require.NoError(t, res.Error)
	require.Equal(t, int64(2), res.RowsAffected)
	require.NoError(t, db.Model(&Article{}).Where("title LIKE ?", "a%").Updates(map[string]any{"title": gorm.Expr("upper(title)")}).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpUpdate, nil, "a1", "b1"),
		ev("articles", int64(2), outbox.OpUpdate, nil, "a2", "b2"),
		ev("articles", int64(1), outbox.OpUpdate, nil, "a1", "b1"),
		ev("articles", int64(2), outbox.OpUpdate, nil, "a2", "b2"),
		ev("articles", int64(3), outbox.OpUpdate, nil, "a3", "b3"),
	}, events(t, db))
	// No match: no event.
	clearEvents(t, db)
	require.NoError(t, db.Model(&Article{}).Where("lang = ?", "none").Update("title", "x").Error)
	require.Empty(t, events(t, db))
	// Missing WHERE: gorm refuses, nothing is read or written.
	require.ErrorIs(t, db.Model(&Article{}).Update("title", "x").Error, gorm.ErrMissingWhereClause)
	require.Empty(t, events(t, db))
}

func TestSoftDeleteAndRestoreThroughUpdate(t *testing.T) {
	t.Parallel()
	db := setup(t)
	as := seed(t, db)
	a := &as[0]
	require.NoError(t, db.Model(a).Update("deleted_at", time.Now()).Error)
	// A soft-deleted row is invisible to scoped updates.
	require.NoError(t, db.Model(a).Update("title", "hidden").Error)
	require.NoError(t, db.Unscoped().Model(a).Update("deleted_at", nil).Error)
	require.NoError(t, db.Delete(a).Error)
	require.NoError(t, db.Unscoped().Model(a).Updates(map[string]any{"deleted_at": gorm.DeletedAt{}}).Error)
	// Restoring a live row is a plain update.
	require.NoError(t, db.Unscoped().Model(a).Update("deleted_at", nil).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpSoftDelete, nil, "a1", "b1"),
		ev("articles", int64(1), outbox.OpRestore, nil, "a1", "b1"),
		ev("articles", int64(1), outbox.OpSoftDelete, nil, "a1", "b1"),
		ev("articles", int64(1), outbox.OpRestore, nil, "a1", "b1"),
		ev("articles", int64(1), outbox.OpUpdate, nil, "a1", "b1"),
	}, events(t, db))
}

func TestUpdateBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	db := setup(t)
	as := seed(t, db)
	a := &as[0]
	err := db.Model(a).Updates(map[string]any{"title": "changed", "embedding": vecsink.Embedding{1}}).Error
	require.ErrorIs(t, err, gormplugin.ErrInvalidVector)
	err = db.Model(a).Update("embedding", "not a vector").Error
	require.ErrorIs(t, err, gormplugin.ErrInvalidVector)
	var got Article
	require.NoError(t, db.First(&got, a.ID).Error)
	require.Equal(t, "a1", got.Title)
	require.Empty(t, events(t, db))
	// Assigning the same key is fine (naming the key in SET makes the
	// trigger report the row: a harmless event).
	require.NoError(t, db.Model(a).Updates(Article{ID: a.ID, Views: 3}).Error)
	require.NoError(t, db.First(&got, a.ID).Error)
	require.Equal(t, 3, got.Views)
}

// Changing a key is captured by the triggers as a delete of the old key and
// an insert of the new one (with no vector: it does not follow the key).
func TestUpdateKeyIsDeleteAndInsert(t *testing.T) {
	t.Parallel()
	db := setup(t)
	as := seed(t, db)
	require.NoError(t, db.Model(&as[0]).Update("id", 99).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpDelete, nil, "a1", "b1"),
		ev("articles", int64(99), outbox.OpInsert, none),
	}, events(t, db))
}

// Writes without a model, and with the table name in another case, are
// captured by the triggers.
func TestTableOnlyWritesAreCaptured(t *testing.T) {
	t.Parallel()
	db := setup(t)
	seed(t, db)
	require.NoError(t, db.Table("articles").Where("id = ?", 1).Update("title", "x").Error)
	require.NoError(t, db.Table("ARTICLES").Where("id = ?", 2).Delete(nil).Error)
	require.NoError(t, db.Table("Articles").Create(&Article{ID: 7, Title: "t", Embedding: vecsink.Embedding{1, 2, 3}}).Error)
	require.NoError(t, db.Table("ARTICLES").Model(&Article{ID: 7}).Update("embedding", vecsink.Embedding{3, 2, 1}).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpUpdate, nil, "a1", "b1"),
		ev("articles", int64(2), outbox.OpDelete, nil, "a2", "b2"),
		ev("articles", int64(7), outbox.OpInsert, vec(t, 3, "binary", 1, 2, 3)),
		ev("articles", int64(7), outbox.OpUpdate, vec(t, 3, "binary", 3, 2, 1), "t", ""),
	}, events(t, db))
	require.NoError(t, db.Exec("DELETE FROM oi_events").Error)
	// A model written to another table is not indexed, and its vector is
	// still kept out of the SQL.
	require.NoError(t, db.Exec("CREATE TABLE article_copies AS SELECT * FROM articles WHERE 0").Error)
	require.NoError(t, db.Table("article_copies").Create(&Article{Title: "copy", Embedding: vecsink.Embedding{1, 2, 3}}).Error)
	require.Empty(t, events(t, db))
}
