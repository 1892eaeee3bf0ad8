package gormplugin_test

import (
	"testing"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

func TestDelete(t *testing.T) {
	t.Parallel()
	db := setup(t)
	for range 2 {
		seed(t, db) // ids 1..6
	}
	require.NoError(t, db.Delete(&Article{}, 1).Error)                // by key (soft)
	require.NoError(t, db.Delete(&Article{}, []int{2, 3}).Error)      // by a slice of keys
	require.NoError(t, db.Delete(&Article{ID: 4}).Error)              // by struct
	require.NoError(t, db.Delete(&[]Article{{ID: 5}, {ID: 6}}).Error) // a slice of structs
	require.NoError(t, db.Delete(&Article{}, 1).Error)                // already soft-deleted: no match
	require.NoError(t, db.Unscoped().Delete(&Article{}, 1).Error)     // hard delete of a soft-deleted row
	require.Equal(t, []outbox.Event{
		ev("articles", int64(1), outbox.OpSoftDelete, nil, "a1", "b1"),
		ev("articles", int64(2), outbox.OpSoftDelete, nil, "a2", "b2"),
		ev("articles", int64(3), outbox.OpSoftDelete, nil, "a3", "b3"),
		ev("articles", int64(4), outbox.OpSoftDelete, nil, "a1", "b1"),
		ev("articles", int64(5), outbox.OpSoftDelete, nil, "a2", "b2"),
		ev("articles", int64(6), outbox.OpSoftDelete, nil, "a3", "b3"),
		ev("articles", int64(1), outbox.OpDelete, nil, "a1", "b1"),
	}, events(t, db))
	var n int64
	require.NoError(t, db.Unscoped().Model(&Article{}).Count(&n).Error)
	require.Equal(t, int64(5), n)
}

func TestBatchDelete(t *testing.T) {
	t.Parallel()
	db := setup(t)
	seed(t, db)
	require.NoError(t, db.Where("lang = ?", "en").Delete(&Article{}).Error)
	require.NoError(t, db.Unscoped().Where("title = ?", "a3").Delete(&Article{}).Error)
	require.ErrorIs(t, db.Delete(&Article{}).Error, gorm.ErrMissingWhereClause)
	require.NoError(t, db.Create(&[]Note{{Slug: "x", Text: "1"}, {Slug: "y", Text: "2"}, {Slug: "z", Text: "3"}}).Error)
	clearEvents(t, db)
	require.NoError(t, db.Delete(&Note{}, "slug IN ?", []string{"x", "z"}).Error)
	require.NoError(t, db.Delete(&Note{Slug: "y"}).Error)
	require.NoError(t, db.Delete(&Note{Slug: "y"}).Error) // gone: no event
	require.Equal(t, []outbox.Event{
		ev("notes", "x", outbox.OpDelete, nil),
		ev("notes", "z", outbox.OpDelete, nil),
		ev("notes", "y", outbox.OpDelete, nil),
	}, events(t, db))
	require.Zero(t, count(t, db, "notes"))
}
