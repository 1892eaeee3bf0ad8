package vecsink_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/hybrid"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Post has two vector fields with different dims and metrics, one with a
// metadata column, each in its own vec0 sidecar.
type Post struct {
	ID        uint
	Slug      string `gorm:"uniqueIndex"`
	Title     string `fts5:""`
	Lang      string
	TitleEmb  vecsink.Embedding `vec:"dim=2;metric=l2"`
	BodyEmb   vecsink.Embedding `vec:"dim=3;metric=cosine;metadata=lang"`
	DeletedAt gorm.DeletedAt
}

// The two sidecars of Post.
const (
	titleVec = "posts_vec"          // the first field keeps the one-vector defaults
	bodyVec  = "posts_body_emb_vec" // further fields: <source>_<column>_vec
)

type postVecs struct{ title, body []float32 }

func multiDB(t *testing.T) (*gorm.DB, *indexer.Indexer) {
	t.Helper()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &Post{}))
	ix, err := indexer.New(db)
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return db, ix
}

// sidecar reads a vec0 sidecar (its live generation, which a rebuild
// changes): rowid → vector.
func sidecar(t *testing.T, db *gorm.DB, table, col string) map[int64][]float32 {
	t.Helper()
	sdb, err := db.DB()
	require.NoError(t, err)
	spec, err := outbox.LoadSpec(context.Background(), sdb, "posts")
	require.NoError(t, err)
	for _, v := range spec.VecSpecs() {
		if v.Table == table {
			table = outbox.Quote(v.Live())
		}
	}
	rows, err := db.Raw(fmt.Sprintf("SELECT rowid, %s FROM %s", col, table)).Rows()
	require.NoError(t, err)
	defer rows.Close()
	out := map[int64][]float32{}
	for rows.Next() {
		var k int64
		var b []byte
		require.NoError(t, rows.Scan(&k, &b))
		v, err := outbox.DecodeVector(b)
		require.NoError(t, err)
		out[k] = v
	}
	require.NoError(t, rows.Err())
	return out
}

// requireSidecars checks both sidecars against want.
func requireSidecars(t *testing.T, db *gorm.DB, want map[int64]postVecs, when string) {
	t.Helper()
	wt, wb := map[int64][]float32{}, map[int64][]float32{}
	for k, v := range want {
		if v.title != nil {
			wt[k] = v.title
		}
		if v.body != nil {
			wb[k] = v.body
		}
	}
	require.Equal(t, wt, sidecar(t, db, titleVec, "embedding"), "%s: %s", when, titleVec)
	require.Equal(t, wb, sidecar(t, db, bodyVec, "body_emb"), "%s: %s", when, bodyVec)
}

func idOf(t *testing.T, db *gorm.DB, slug string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.Raw(`SELECT id FROM posts WHERE slug = ?`, slug).Scan(&id).Error)
	require.NotZero(t, id, slug)
	return id
}

func TestMultiVecMigrate(t *testing.T) {
	t.Parallel()
	db, _ := multiDB(t)
	spec, err := outbox.LoadSpec(t.Context(), db.Statement.ConnPool, "posts")
	require.NoError(t, err)
	require.Equal(t, &outbox.VecSpec{Table: titleVec, Column: "embedding", Field: "TitleEmb", Dim: 2, Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary}, spec.Vec)
	require.Equal(t, []outbox.VecSpec{{Table: bodyVec, Column: "body_emb", Field: "BodyEmb", Dim: 3, Metric: outbox.MetricCosine, Encoding: outbox.EncodingBinary,
		Metadata: []outbox.MetaCol{{Name: "lang", Type: "text"}}}}, spec.MoreVecs)
	var sqls []string
	require.NoError(t, db.Raw(`SELECT sql FROM sqlite_master WHERE name IN (?, ?) ORDER BY name`, titleVec, bodyVec).Scan(&sqls).Error)
	require.Len(t, sqls, 2)
	require.Contains(t, sqls[0], "body_emb float[3] distance_metric=cosine")
	require.Contains(t, sqls[0], "lang text")
	require.Contains(t, sqls[1], "embedding float[2] distance_metric=l2")
	// Migrating again changes nothing.
	require.NoError(t, gormplugin.Migrate(db, &Post{}))
}

func TestMultiVecWritesRebuildDrain(t *testing.T) {
	t.Parallel()
	db, ix := multiDB(t)
	ctx := t.Context()
	want := map[int64]postVecs{}

	// Create: one row with both vectors, a batch with mixed ones.
	p1 := Post{Slug: "p1", Title: "one", Lang: "en", TitleEmb: vecsink.Embedding{1, 0}, BodyEmb: vecsink.Embedding{1, 0, 0}}
	require.NoError(t, db.Create(&p1).Error)
	want[1] = postVecs{[]float32{1, 0}, []float32{1, 0, 0}}
	batch := []Post{
		{Slug: "p2", Title: "two", TitleEmb: vecsink.Embedding{0, 1}},
		{Slug: "p3", Title: "three", BodyEmb: vecsink.Embedding{0, 1, 0}},
		{Slug: "p4", Title: "four"},
	}
	require.NoError(t, db.Create(&batch).Error)
	want[2] = postVecs{title: []float32{0, 1}}
	want[3] = postVecs{body: []float32{0, 1, 0}}
	want[4] = postVecs{}
	// A single row with only the second vector.
	require.NoError(t, db.Create(&Post{Slug: "p5", BodyEmb: vecsink.Embedding{0, 0, 1}}).Error)
	want[5] = postVecs{body: []float32{0, 0, 1}}

	// Save of a loaded row keeps both vectors.
	var got Post
	require.NoError(t, db.First(&got, 1).Error)
	got.Title = "one again"
	require.NoError(t, db.Save(&got).Error)
	// Updates with a struct: only the second field.
	require.NoError(t, db.Model(&Post{ID: 2}).Updates(Post{Title: "two b", BodyEmb: vecsink.Embedding{1, 1, 0}}).Error)
	want[2] = postVecs{[]float32{0, 1}, []float32{1, 1, 0}}
	// A map naming the first field by column, the second by Go name.
	require.NoError(t, db.Model(&Post{ID: 4}).Updates(map[string]any{"title_emb": vecsink.Embedding{0.5, 0.5}, "BodyEmb": []float32{0, 0.5, 0.5}}).Error)
	want[4] = postVecs{[]float32{0.5, 0.5}, []float32{0, 0.5, 0.5}}
	// ClearVector clears one field.
	require.NoError(t, db.Model(&Post{ID: 1}).Update("body_emb", gormplugin.ClearVector).Error)
	want[1] = postVecs{title: []float32{1, 0}}
	// An update of several rows sets a vector on each.
	require.NoError(t, db.Model(&Post{}).Where("id IN ?", []int{3, 5}).Update("title_emb", vecsink.Embedding{0.25, 0.75}).Error)
	want[3] = postVecs{[]float32{0.25, 0.75}, want[3].body}
	want[5] = postVecs{[]float32{0.25, 0.75}, want[5].body}

	// Upsert updating everything: both vectors of an existing row, and a new row.
	require.NoError(t, db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&[]Post{
		{ID: 2, Slug: "p2", Title: "two c", TitleEmb: vecsink.Embedding{2, 2}, BodyEmb: vecsink.Embedding{2, 0, 2}},
		{ID: 6, Slug: "p6", Title: "six", TitleEmb: vecsink.Embedding{6, 6}, BodyEmb: vecsink.Embedding{0, 6, 6}},
	}).Error)
	want[2] = postVecs{[]float32{2, 2}, []float32{2, 0, 2}}
	want[6] = postVecs{[]float32{6, 6}, []float32{0, 6, 6}}
	// Upsert whose DO UPDATE names only the second vector: an updated row
	// keeps its first one, an inserted row gets both.
	require.NoError(t, db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "slug"}}, DoUpdates: clause.AssignmentColumns([]string{"title", "body_emb"})}).Create(&[]Post{
		{Slug: "p6", Title: "six b", TitleEmb: vecsink.Embedding{9, 9}, BodyEmb: vecsink.Embedding{9, 0, 0}},
		{Slug: "p7", Title: "seven", TitleEmb: vecsink.Embedding{7, 7}, BodyEmb: vecsink.Embedding{0, 0, 7}},
	}).Error)
	want[6] = postVecs{[]float32{6, 6}, []float32{9, 0, 0}}
	want[idOf(t, db, "p7")] = postVecs{[]float32{7, 7}, []float32{0, 0, 7}}
	// DO NOTHING batch: the existing row is skipped, the new one inserted.
	require.NoError(t, db.Clauses(clause.OnConflict{DoNothing: true}).Create(&[]Post{
		{Slug: "p1", TitleEmb: vecsink.Embedding{8, 8}, BodyEmb: vecsink.Embedding{8, 8, 8}},
		{Slug: "p8", TitleEmb: vecsink.Embedding{8, 0}, BodyEmb: vecsink.Embedding{0, 8, 0}},
	}).Error)
	want[idOf(t, db, "p8")] = postVecs{[]float32{8, 0}, []float32{0, 8, 0}}

	// A hard delete and a raw re-insert of the key: the new row has no vectors.
	require.NoError(t, db.Unscoped().Delete(&Post{ID: 3}).Error)
	require.NoError(t, db.Exec(`INSERT INTO posts (id, slug, title, lang) VALUES (3, 'p3b', 'three b', 'en')`).Error)
	want[3] = postVecs{}
	// A soft delete keeps the vectors (flagged in vec0).
	require.NoError(t, db.Delete(&Post{ID: uint(idOf(t, db, "p7"))}).Error)

	// Invalid vectors fail naming the field.
	err := db.Create(&Post{Slug: "bad", BodyEmb: vecsink.Embedding{1, 2}}).Error
	require.ErrorIs(t, err, gormplugin.ErrInvalidVector)
	require.ErrorContains(t, err, "BodyEmb")
	err = db.Model(&Post{ID: 1}).Update("TitleEmb", vecsink.Embedding{1, 2, 3}).Error
	require.ErrorIs(t, err, gormplugin.ErrInvalidVector)
	require.ErrorContains(t, err, "TitleEmb")

	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	requireSidecars(t, db, want, "drain")
	require.NoError(t, ix.Rebuild(ctx, "posts"))
	requireSidecars(t, db, want, "rebuild after compaction")
	require.NoError(t, ix.Replay(ctx, 1))
	requireSidecars(t, db, want, "replay")
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	requireSidecars(t, db, want, "drain after rebuild")

	var deleted int64
	require.NoError(t, db.Raw(fmt.Sprintf("SELECT count(*) FROM %s WHERE deleted = 1", outbox.GenName(bodyVec, 1))).Scan(&deleted).Error)
	require.EqualValues(t, 1, deleted, "the soft-deleted row is flagged in the second sidecar too")
}

// The apply path (no compaction in between) and Rebuild from the full,
// uncompacted log agree for every field.
func TestMultiVecFullLogRebuild(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &Post{}))
	ix, err := indexer.New(db, indexer.WithRetention(-1), indexer.WithBatchSize(3))
	require.NoError(t, err)
	defer ix.Close()
	ctx := t.Context()
	require.NoError(t, db.Create(&Post{ID: 1, Slug: "a", TitleEmb: vecsink.Embedding{1, 1}, BodyEmb: vecsink.Embedding{1, 1, 1}}).Error)
	require.NoError(t, db.Model(&Post{ID: 1}).Update("BodyEmb", vecsink.Embedding{2, 2, 2}).Error)
	require.NoError(t, db.Unscoped().Delete(&Post{ID: 1}).Error)
	// Re-created through gorm with the first vector only: no old second vector.
	require.NoError(t, db.Create(&Post{ID: 1, Slug: "a", TitleEmb: vecsink.Embedding{3, 3}}).Error)
	require.NoError(t, db.Create(&Post{ID: 2, Slug: "b", BodyEmb: vecsink.Embedding{0, 0, 2}}).Error)
	require.NoError(t, db.Model(&Post{ID: 2}).Update("body_emb", gormplugin.ClearVector).Error)
	require.NoError(t, db.Model(&Post{ID: 2}).Update("body_emb", vecsink.Embedding{0, 2, 0}).Error)
	want := map[int64]postVecs{1: {title: []float32{3, 3}}, 2: {body: []float32{0, 2, 0}}}
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	requireSidecars(t, db, want, "drain")
	require.NoError(t, ix.Rebuild(ctx))
	requireSidecars(t, db, want, "rebuild")
	require.NoError(t, ix.Replay(ctx, 1))
	requireSidecars(t, db, want, "replay")
	n, err := ix.Compact(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "retention off")
}

func TestMultiVecKNNWithField(t *testing.T) {
	t.Parallel()
	db, ix := multiDB(t)
	ctx := t.Context()
	require.NoError(t, db.Create(&[]Post{
		{ID: 1, Slug: "a", Title: "alpha", Lang: "en", TitleEmb: vecsink.Embedding{1, 0}, BodyEmb: vecsink.Embedding{0, 0, 1}},
		{ID: 2, Slug: "b", Title: "beta", Lang: "fr", TitleEmb: vecsink.Embedding{0, 1}, BodyEmb: vecsink.Embedding{1, 0, 0}},
	}).Error)
	_, err := ix.Drain(ctx)
	require.NoError(t, err)

	for _, name := range []string{"TitleEmb", "posts_vec", "POSTS_VEC", "embedding"} {
		res, err := vecsink.KNN[Post](ctx, db, []float32{1, 0}, 2, vecsink.WithField(name))
		require.NoError(t, err, name)
		require.Len(t, res, 2)
		require.EqualValues(t, 1, res[0].Model.ID, name)
		require.InDelta(t, 0, res[0].Distance, 1e-6)
	}
	for _, name := range []string{"BodyEmb", bodyVec, "body_emb"} {
		res, err := vecsink.KNN[Post](ctx, db, []float32{1, 0, 0}, 2, vecsink.WithField(name))
		require.NoError(t, err, name)
		require.Len(t, res, 2)
		require.EqualValues(t, 2, res[0].Model.ID, name)
	}
	// Metadata filters apply to the chosen field's sidecar.
	res, err := vecsink.KNN[Post](ctx, db, []float32{1, 0, 0}, 2, vecsink.WithField("BodyEmb"), vecsink.WithFilter("lang = ?", "en"))
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.EqualValues(t, 1, res[0].Model.ID)

	// No field: ambiguous, naming both.
	_, err = vecsink.KNN[Post](ctx, db, []float32{1, 0}, 2)
	require.ErrorIs(t, err, vecsink.ErrAmbiguousField)
	require.ErrorContains(t, err, "TitleEmb")
	require.ErrorContains(t, err, "BodyEmb")
	_, _, err = vecsink.KNNSQL[Post](ctx, db, []float32{1, 0}, 2)
	require.ErrorIs(t, err, vecsink.ErrAmbiguousField)
	spec, err := outbox.LoadSpec(ctx, db.Statement.ConnPool, "posts")
	require.NoError(t, err)
	_, err = vecsink.Neighbors(ctx, db.Statement.ConnPool, spec, []float32{1, 0}, 2)
	require.ErrorIs(t, err, vecsink.ErrAmbiguousField)
	// An unknown field names it.
	_, err = vecsink.KNN[Post](ctx, db, []float32{1, 0}, 2, vecsink.WithField("SummaryEmb"))
	require.ErrorIs(t, err, vecsink.ErrUnknownField)
	require.ErrorContains(t, err, `"SummaryEmb"`)
	_, err = vecsink.KNN[Post](ctx, db, []float32{1, 0}, 2, vecsink.WithField(""))
	require.ErrorIs(t, err, vecsink.ErrInvalidOption)
	// The query vector is checked against the chosen field's dim.
	_, err = vecsink.KNN[Post](ctx, db, []float32{1, 0}, 2, vecsink.WithField("BodyEmb"))
	require.ErrorIs(t, err, vecsink.ErrBadVector)

	// KNNSQL and Neighbors search the chosen sidecar.
	q, args, err := vecsink.KNNSQL[Post](ctx, db, []float32{1, 0, 0}, 1, vecsink.WithField("BodyEmb"))
	require.NoError(t, err)
	require.Contains(t, q, bodyVec)
	var rows []struct {
		ID       uint
		Distance float64
	}
	require.NoError(t, db.Raw(q, args...).Scan(&rows).Error)
	require.Len(t, rows, 1)
	require.EqualValues(t, 2, rows[0].ID)
	ns, err := vecsink.Neighbors(ctx, db.Statement.ConnPool, spec, []float32{0, 1}, 1, vecsink.WithField("TitleEmb"))
	require.NoError(t, err)
	require.Equal(t, []vecsink.Neighbor{{Key: int64(2), Distance: 0}}, ns)

	// hybrid.Search picks the field through its vector-side options.
	_, err = hybrid.Search[Post](ctx, db, []float32{1, 0}, ftssink.Term("alpha"))
	require.ErrorIs(t, err, vecsink.ErrAmbiguousField)
	hs, err := hybrid.Search[Post](ctx, db, []float32{1, 0, 0}, ftssink.Term("beta"), hybrid.WithVecOptions(vecsink.WithField("BodyEmb")))
	require.NoError(t, err)
	require.NotEmpty(t, hs)
	require.EqualValues(t, 2, hs[0].Model.ID)
	require.Equal(t, 1, hs[0].VecRank)
}

func TestMultiVecDropSidecars(t *testing.T) {
	t.Parallel()
	exists := func(db *gorm.DB, name string) bool {
		var n int
		require.NoError(t, db.Raw(`SELECT count(*) FROM sqlite_master WHERE name = ?`, name).Scan(&n).Error)
		return n == 1
	}
	db, _ := multiDB(t)
	require.True(t, exists(db, titleVec))
	require.True(t, exists(db, bodyVec))
	require.NoError(t, gormplugin.DropSidecar(db, &Post{}))
	require.False(t, exists(db, titleVec))
	require.False(t, exists(db, bodyVec))

	db2, _ := multiDB(t)
	require.NoError(t, db2.Migrator().DropTable(&Post{}))
	require.False(t, exists(db2, titleVec))
	require.False(t, exists(db2, bodyVec))
	require.False(t, exists(db2, "posts"))
}

func TestMultiVecSpecValidate(t *testing.T) {
	t.Parallel()
	base := func() *outbox.Spec {
		return &outbox.Spec{Version: outbox.SpecVersion, Source: "s", Key: "id", KeyType: outbox.KeyInteger,
			Vec:      &outbox.VecSpec{Table: "s_vec", Column: "embedding", Field: "A", Dim: 2, Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary},
			MoreVecs: []outbox.VecSpec{{Table: "s_b_vec", Column: "b", Field: "B", Dim: 3, Metric: outbox.MetricCosine, Encoding: outbox.EncodingBinary}}}
	}
	require.NoError(t, base().Validate())
	s := base()
	s.MoreVecs[0].Table = "S_VEC"
	require.ErrorIs(t, s.Validate(), outbox.ErrBadSpec)
	require.ErrorContains(t, s.Validate(), "S_VEC")
	s = base()
	s.MoreVecs[0].Field = "A"
	require.ErrorContains(t, s.Validate(), `"A"`)
	s = base()
	s.Vec = nil
	s.FTS = &outbox.FTSSpec{Table: "s_fts", Mode: outbox.ModeInTable, Tokenize: "unicode61", Columns: []outbox.FTSCol{{Name: "t", Source: "t"}}}
	require.ErrorContains(t, s.Validate(), "more_vecs without vec")
	s = base()
	s.MoreVecs[0].Dim = 0
	require.ErrorIs(t, s.Validate(), outbox.ErrBadSpec)
	// The JSON carries every field, for the binary.
	b := base()
	require.Equal(t, "", b.EventField(b.Vec))
	require.Equal(t, "s_b_vec", b.EventField(&b.MoreVecs[0]))
}
