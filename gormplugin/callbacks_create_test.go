package gormplugin_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

func count(t *testing.T, db *gorm.DB, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Table(table).Count(&n).Error)
	return n
}

func TestCreateOne(t *testing.T) {
	t.Parallel()
	db := setup(t)
	var log []string
	a := Article{Title: "hello", Body: "world", Lang: "en", Embedding: vecsink.Embedding{1, 2, 3}}
	require.NoError(t, counted(db, &log).Create(&a).Error)
	require.Equal(t, uint(1), a.ID)
	require.Equal(t, []outbox.Event{ev("articles", int64(1), outbox.OpInsert, vec(t, 3, "binary", 1, 2, 3))}, events(t, db))
	// One extra statement: the vector goes onto the trigger's event.
	require.Len(t, log, 2, "%q", log)
	require.True(t, strings.HasPrefix(log[1], "UPDATE oi_events SET vec"), log[1])

	// The vector lives only in the event: the source table has no such column.
	var cols []string
	require.NoError(t, db.Raw("SELECT name FROM pragma_table_info('articles')").Scan(&cols).Error)
	require.NotContains(t, cols, "embedding")
	var got Article
	require.NoError(t, db.First(&got, a.ID).Error)
	require.Equal(t, "hello", got.Title)
	require.Nil(t, got.Embedding)
}

func TestCreateSliceAndNoVector(t *testing.T) {
	t.Parallel()
	db := setup(t)
	as := []*Article{
		{Title: "a", Embedding: vecsink.Embedding{1, 0, 0}},
		{Title: "b"}, // no vector: an empty, non-NULL vec
		{Title: "c", Embedding: vecsink.Embedding{0, 0, 1}},
	}
	require.NoError(t, db.Create(&as).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpInsert, vec(t, 3, "binary", 1, 0, 0)),
		ev("articles", int64(2), outbox.OpInsert, none),
		ev("articles", int64(3), outbox.OpInsert, vec(t, 3, "binary", 0, 0, 1)),
	}, events(t, db))
	require.NotNil(t, events(t, db)[1].Vec)
}

func TestCreateInBatchesOneVectorStatementPerBatch(t *testing.T) {
	t.Parallel()
	db := setup(t)
	var notes []Note
	for i := range 10 {
		notes = append(notes, Note{Slug: string(rune('a' + i)), Text: "t", Vec: []float32{float32(i), 1}})
	}
	var log []string
	require.NoError(t, counted(db, &log).CreateInBatches(&notes, 4).Error)
	var want []outbox.Event
	for i := range 10 {
		want = append(want, ev("notes", string(rune('a'+i)), outbox.OpInsert, vec(t, 2, "binary", float32(i), 1)))
	}
	require.Equal(t, want, events(t, db))
	var deletes, inserts int
	for _, q := range log {
		switch {
		case strings.HasPrefix(q, "DELETE FROM oi_events"):
			deletes++
		case strings.HasPrefix(q, "INSERT INTO oi_events"):
			inserts++
		}
	}
	// Per batch: the INSERT, then the triggers' events are replaced by
	// events with the vectors (one DELETE, one multi-row INSERT).
	require.Equal(t, 3, deletes)
	require.Equal(t, 3, inserts)
	require.Len(t, log, 9, "%q", log)
}

func TestCreateFromMap(t *testing.T) {
	t.Parallel()
	db := setup(t)
	row := map[string]any{"title": "m", "lang": "de", "embedding": vecsink.Embedding{0, 1, 0}}
	require.NoError(t, db.Model(&Article{}).Create(row).Error)
	require.Contains(t, row, "embedding", "the caller's map is left as it was")
	rows := []map[string]any{{"slug": "x", "text": "one", "Vec": []float32{1, 1}}, {"slug": "y", "text": "two"}}
	require.NoError(t, db.Model(&Note{}).Create(rows).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpInsert, vec(t, 3, "binary", 0, 1, 0)),
		ev("notes", "x", outbox.OpInsert, vec(t, 2, "binary", 1, 1)),
		ev("notes", "y", outbox.OpInsert, none),
	}, events(t, db))
}

func TestCreateInvalidVectorWritesNothing(t *testing.T) {
	t.Parallel()
	db := setup(t)
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := map[string]any{
		"short":         &Article{Title: "x", Embedding: vecsink.Embedding{1, 2}},
		"long":          &Article{Title: "x", Embedding: vecsink.Embedding{1, 2, 3, 4}},
		"nan":           &Article{Title: "x", Embedding: vecsink.Embedding{1, nan, 3}},
		"inf":           &Article{Title: "x", Embedding: vecsink.Embedding{inf, 2, 3}},
		"second of two": &[]Article{{Title: "ok", Embedding: vecsink.Embedding{1, 2, 3}}, {Title: "bad", Embedding: vecsink.Embedding{1}}},
		"note":          &Note{Slug: "s", Vec: []float32{1, 2, 3}},
	}
	for name, v := range cases {
		err := db.Create(v).Error
		require.Error(t, err, name)
		require.True(t, errors.Is(err, gormplugin.ErrInvalidVector), "%s: %v", name, err)
		require.True(t, errors.Is(err, outbox.ErrBadVector), name)
	}
	require.Zero(t, count(t, db, "articles"))
	require.Zero(t, count(t, db, "notes"))
	require.Empty(t, events(t, db))

	// In a caller's transaction the failed statement leaves nothing either.
	err := db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Create(&Article{Title: "kept"}).Error)
		require.ErrorIs(t, tx.Create(&Article{Title: "bad", Embedding: vecsink.Embedding{nan, 0, 0}}).Error, gormplugin.ErrInvalidVector)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(1), count(t, db, "articles"))
	require.Equal(t, []outbox.Event{ev("articles", int64(1), outbox.OpInsert, none)}, events(t, db))
}

func TestSave(t *testing.T) {
	t.Parallel()
	db := setup(t)
	a := Article{Title: "t1", Body: "b1", Embedding: vecsink.Embedding{1, 2, 3}}
	require.NoError(t, db.Save(&a).Error) // insert
	a.Title = "t2"
	require.NoError(t, db.Save(&a).Error) // update: Save writes every field, the vector too
	a.Embedding = nil
	require.NoError(t, db.Save(&a).Error) // an empty vector leaves the stored one alone
	n := Note{Slug: "n", Text: "x", Vec: []float32{1, 2}}
	require.NoError(t, db.Save(&n).Error) // string key: update of nothing, then upsert
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpInsert, vec(t, 3, "binary", 1, 2, 3)),
		ev("articles", int64(1), outbox.OpUpdate, vec(t, 3, "binary", 1, 2, 3), "t1", "b1"),
		ev("articles", int64(1), outbox.OpUpdate, nil, "t2", "b1"),
		ev("notes", "n", outbox.OpInsert, vec(t, 2, "binary", 1, 2)),
	}, events(t, db))
	// Saving a slice is an upsert.
	clearEvents(t, db)
	ns := []Note{{Slug: "n", Text: "y", Vec: []float32{3, 4}}, {Slug: "m", Text: "z"}}
	require.NoError(t, db.Save(&ns).Error)
	require.Equal(t, []outbox.Event{
		ev("notes", "n", outbox.OpUpdate, vec(t, 2, "binary", 3, 4)),
		ev("notes", "m", outbox.OpInsert, none),
	}, events(t, db))
}

func TestUpsert(t *testing.T) {
	t.Parallel()
	db := setup(t)
	require.NoError(t, db.Create(&Article{ID: 1, Title: "one", Body: "b", Embedding: vecsink.Embedding{1, 0, 0}}).Error)
	clearEvents(t, db)

	// DoNothing: only the row actually inserted gets an event.
	rows := []Article{{ID: 1, Title: "dup"}, {ID: 2, Title: "two", Embedding: vecsink.Embedding{0, 1, 0}}}
	require.NoError(t, db.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error)
	require.Equal(t, []outbox.Event{ev("articles", int64(2), outbox.OpInsert, vec(t, 3, "binary", 0, 1, 0))}, events(t, db))
	clearEvents(t, db)

	// UpdateAll: the existing row is overwritten (with its before-image), the new one inserted.
	rows = []Article{{ID: 1, Title: "uno", Embedding: vecsink.Embedding{0, 0, 1}}, {ID: 3, Title: "three"}}
	require.NoError(t, db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&rows).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpUpdate, vec(t, 3, "binary", 0, 0, 1), "one", "b"),
		ev("articles", int64(3), outbox.OpInsert, none),
	}, events(t, db))
	clearEvents(t, db)

	// DoUpdates of an unindexed column: no event for the existing row.
	up := func(cols ...string) *gorm.DB {
		return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.AssignmentColumns(cols)})
	}
	require.NoError(t, up("views").Create(&Article{ID: 1, Views: 9}).Error)
	require.Empty(t, events(t, db))
	var got Article
	require.NoError(t, db.First(&got, 1).Error)
	require.Equal(t, 9, got.Views)

	// DoUpdates of an indexed column: an update with the before-image, the vector kept.
	require.NoError(t, up("title").Create(&Article{ID: 1, Title: "eins"}).Error)
	// DoUpdates naming the vector: the vector is carried, the SQL never sees it.
	require.NoError(t, up("embedding").Create(&Article{ID: 1, Embedding: vecsink.Embedding{1, 1, 1}}).Error)
	require.NoError(t, db.First(&got, 1).Error)
	require.Equal(t, "eins", got.Title)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpUpdate, nil, "uno", ""),
		ev("articles", int64(1), outbox.OpUpdate, vec(t, 3, "binary", 1, 1, 1), "eins", ""),
	}, events(t, db))
	clearEvents(t, db)

	// Conflicts on a non-key unique column resolve to the existing row's key.
	require.NoError(t, db.Exec("CREATE UNIQUE INDEX notes_text ON notes(text)").Error)
	require.NoError(t, db.Create(&Note{Slug: "a", Text: "same"}).Error)
	require.NoError(t, db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "text"}}, DoUpdates: clause.AssignmentColumns([]string{"score", "vec"})}).
		Create(&Note{Slug: "b", Text: "same", Score: 2, Vec: []float32{5, 5}}).Error)
	require.Equal(t, []outbox.Event{
		ev("notes", "a", outbox.OpInsert, none),
		ev("notes", "a", outbox.OpVector, vec(t, 2, "binary", 5, 5)), // no watched column changed: an event of its own
	}, events(t, db))
}

func TestFirstOrCreate(t *testing.T) {
	t.Parallel()
	db := setup(t)
	var a Article
	require.NoError(t, db.Where(Article{Title: "x"}).FirstOrCreate(&a).Error)
	var b Article
	require.NoError(t, db.Where(Article{Title: "x"}).FirstOrCreate(&b).Error) // found: no write
	require.Equal(t, a.ID, b.ID)
	var c Article
	require.NoError(t, db.Where(Article{Title: "x"}).Assign(Article{Body: "new"}).FirstOrCreate(&c).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpInsert, none),
		ev("articles", int64(1), outbox.OpUpdate, nil, "x", ""),
	}, events(t, db))
}

func TestAssociations(t *testing.T) {
	t.Parallel()
	db := setup(t)
	a := Article{Title: "parent", Comments: []Comment{{Text: "c1"}, {Text: "c2"}}}
	require.NoError(t, db.Create(&a).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpInsert, none),
		ev("comments", int64(1), outbox.OpInsert, nil),
		ev("comments", int64(2), outbox.OpInsert, nil),
	}, events(t, db)[0:3])
	require.Len(t, events(t, db), 3)
	// Saving the parent again with a new child: only the child is new.
	clearEvents(t, db)
	a.Comments = append(a.Comments, Comment{Text: "c3"})
	require.NoError(t, db.Session(&gorm.Session{FullSaveAssociations: false}).Save(&a).Error)
	evs := events(t, db)
	require.Contains(t, evs, ev("comments", int64(3), outbox.OpInsert, nil))
	require.NotContains(t, evs, ev("comments", int64(1), outbox.OpInsert, nil))
}

func TestGenerics(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	a := Article{Title: "g", Embedding: vecsink.Embedding{1, 2, 3}}
	require.NoError(t, gorm.G[Article](db).Create(ctx, &a))
	_, err := gorm.G[Article](db).Where("id = ?", a.ID).Update(ctx, "title", "h")
	require.NoError(t, err)
	_, err = gorm.G[Article](db).Where("id = ?", a.ID).Update(ctx, "embedding", vecsink.Embedding{3, 2, 1})
	require.NoError(t, err)
	_, err = gorm.G[Article](db).Where("id = ?", a.ID).Delete(ctx)
	require.NoError(t, err)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpInsert, vec(t, 3, "binary", 1, 2, 3)),
		ev("articles", int64(1), outbox.OpUpdate, nil, "g", ""),
		ev("articles", int64(1), outbox.OpUpdate, vec(t, 3, "binary", 3, 2, 1), "h", ""),
		ev("articles", int64(1), outbox.OpSoftDelete, nil, "h", ""),
	}, events(t, db))
}

// A user trigger that writes another indexed table interleaves its events
// with the statement's: the vectors then follow as events of their own.
func TestCreateBatchWithInterleavedTriggerEvents(t *testing.T) {
	t.Parallel()
	db := setup(t)
	require.NoError(t, db.Exec(`CREATE TRIGGER audit AFTER INSERT ON articles BEGIN INSERT INTO comments (article_id, text) VALUES (NEW.id, 'audit'); END`).Error)
	as := []Article{{Title: "a", Embedding: vecsink.Embedding{1, 0, 0}}, {Title: "b"}}
	require.NoError(t, db.Create(&as).Error)
	require.Equal(t, []outbox.Event{
		ev("comments", int64(1), outbox.OpInsert, nil), // SQLite fires the newest trigger first
		ev("articles", int64(1), outbox.OpInsert, none),
		ev("comments", int64(2), outbox.OpInsert, nil),
		ev("articles", int64(2), outbox.OpInsert, none),
		ev("articles", int64(1), outbox.OpVector, vec(t, 3, "binary", 1, 0, 0)),
	}, events(t, db))
	// One row: its event is the newest, and carries the vector.
	clearEvents(t, db)
	require.NoError(t, db.Create(&Article{Title: "c", Embedding: vecsink.Embedding{0, 1, 0}}).Error)
	require.Equal(t, []outbox.Event{
		ev("comments", int64(3), outbox.OpInsert, nil),
		ev("articles", int64(3), outbox.OpInsert, vec(t, 3, "binary", 0, 1, 0)),
	}, events(t, db))
	// The audit trigger created after the capture one fires first; created
	// before it, it fires last, and the vector gets an event of its own.
	clearEvents(t, db)
	require.NoError(t, db.Exec(`DROP TRIGGER audit`).Error)
	require.NoError(t, gormplugin.DropSidecar(db, &Comment{}))
	require.NoError(t, db.Exec(`CREATE TRIGGER audit AFTER INSERT ON articles BEGIN INSERT INTO comments (article_id, text) VALUES (NEW.id, 'audit'); END`).Error)
	require.NoError(t, gormplugin.Migrate(db, &Article{}, &Comment{})) // re-creates the capture triggers after it
	clearEvents(t, db)
	require.NoError(t, db.Create(&Article{Title: "d", Embedding: vecsink.Embedding{0, 0, 1}}).Error)
	require.Equal(t, []outbox.Event{
		ev("articles", int64(4), outbox.OpInsert, none),
		ev("comments", int64(4), outbox.OpInsert, nil),
		ev("articles", int64(4), outbox.OpVector, vec(t, 3, "binary", 0, 0, 1)),
	}, events(t, db))
}
