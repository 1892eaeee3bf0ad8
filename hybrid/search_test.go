package hybrid_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/hybrid"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/tests/fixture"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

type doc struct {
	ID        int64
	Title     string
	Body      string
	Lang      string
	DeletedAt gorm.DeletedAt
}

type page struct {
	Path      string `gorm:"primaryKey"`
	Title     string
	Body      string
	Lang      string
	DeletedAt gorm.DeletedAt
}

var vocab = strings.Fields(`alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau`)

func words(rng *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = vocab[min(rng.IntN(len(vocab)), rng.IntN(len(vocab)))]
	}
	return strings.Join(w, " ")
}

func spec(table, key, keyType, mode string) *outbox.Spec {
	return &outbox.Spec{
		Version: outbox.SpecVersion, Source: table, Key: key, KeyType: keyType, SoftDelete: "deleted_at",
		Vec: &outbox.VecSpec{Table: table + "_vec", Column: "embedding", Dim: 4, Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary,
			Metadata: []outbox.MetaCol{{Name: "lang", Type: "text"}}},
		FTS: &outbox.FTSSpec{Table: table + "_fts", Mode: mode, Tokenize: "unicode61",
			Columns: []outbox.FTSCol{{Name: "title", Source: "title"}, {Name: "body", Source: "body"}}},
	}
}

// seed creates n rows (keys from key(i)), one in five soft-deleted.
func seed(t *testing.T, db *gorm.DB, model any, sp *outbox.Spec, n int, key func(int) any, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.Table(sp.Source).AutoMigrate(model))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, fixture.Register(ctx, sqlDB, sp))
	tx, err := sqlDB.Begin()
	require.NoError(t, err)
	for i := 1; i <= n; i++ {
		title, body, lang := words(rng, 3), words(rng, 12), []string{"en", "fr"}[rng.IntN(2)]
		deleted := rng.IntN(5) == 0
		var del any
		if deleted {
			del = time.Unix(1700000000, 0).UTC()
		}
		_, err := tx.Exec(fmt.Sprintf(`INSERT INTO %s (%s, title, body, lang, deleted_at) VALUES (?, ?, ?, ?, ?)`, sp.Source, sp.Key), key(i), title, body, lang, del)
		require.NoError(t, err)
		vec := []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())}
		require.NoError(t, fixture.PutVec(ctx, tx, sp, key(i), vec, deleted, lang))
		require.NoError(t, fixture.PutFTS(ctx, tx, sp, key(i), []any{title, body}, deleted))
	}
	require.NoError(t, tx.Commit())
}

type ref struct {
	key               any
	score             float64
	vecRank, textRank int
	distance, bm25    float64
}

// reference fuses the vector ranking of vecsink.Neighbors (checked against
// brute force in vecsink) with the full-text ranking of hand-written FTS5
// SQL, by the RRF formula.
func reference(t *testing.T, db *sql.DB, sp *outbox.Spec, q []float32, expr string, cand int, rrfK, wv, wt float64, extraVec ...vecsink.Option) []ref {
	t.Helper()
	ns, err := vecsink.Neighbors(context.Background(), db, sp, q, cand, extraVec...)
	require.NoError(t, err)
	m := map[any]*ref{}
	get := func(k any) *ref {
		if m[k] == nil {
			m[k] = &ref{key: k, distance: math.NaN(), bm25: math.NaN()}
		}
		return m[k]
	}
	for i, n := range ns {
		r := get(n.Key)
		r.vecRank, r.distance = i+1, n.Distance
		r.score += wv / (rrfK + float64(i+1))
	}
	f := sp.FTS.Table
	keyExpr := f + ".rowid"
	join := ""
	if sp.KeyType == outbox.KeyText {
		keyExpr, join = "km.key", " JOIN oi_keymap km ON km.rid = "+f+".rowid"
	}
	rows, err := db.Query(fmt.Sprintf(`SELECT %[1]s, bm25(%[2]s) FROM %[2]s%[3]s WHERE %[2]s MATCH ? AND %[2]s.deleted = 0 ORDER BY bm25(%[2]s), %[2]s.rowid LIMIT ?`,
		keyExpr, f, join), expr, cand)
	require.NoError(t, err)
	defer rows.Close()
	i := 0
	for rows.Next() {
		var k any
		var rank float64
		require.NoError(t, rows.Scan(&k, &rank))
		if b, ok := k.([]byte); ok {
			k = string(b)
		}
		i++
		r := get(k)
		r.textRank, r.bm25 = i, rank
		r.score += wt / (rrfK + float64(i))
	}
	require.NoError(t, rows.Err())
	var out []ref
	for _, r := range m {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].score != out[j].score {
			return out[i].score > out[j].score
		}
		return fmt.Sprint(out[i].key) < fmt.Sprint(out[j].key)
	})
	return out
}

func requireFused[T any](t *testing.T, want []ref, got []hybrid.Result[T], key func(T) any) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, w := range want {
		g := got[i]
		require.Equal(t, w.key, key(g.Model), "rank %d", i)
		require.InDelta(t, w.score, g.Score, 1e-12)
		require.Equal(t, w.vecRank, g.VecRank)
		require.Equal(t, w.textRank, g.TextRank)
		if w.vecRank == 0 {
			require.True(t, math.IsNaN(g.Distance))
		} else {
			require.Equal(t, w.distance, g.Distance)
		}
		if w.textRank == 0 {
			require.True(t, math.IsNaN(g.BM25))
		} else {
			require.Equal(t, w.bm25, g.BM25)
		}
	}
}

func TestSearchFusesLikeRRF(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	sp := spec("docs", "id", outbox.KeyInteger, outbox.ModeInTable)
	seed(t, db, &doc{}, sp, 300, func(i int) any { return int64(i) }, rng)
	docKey := func(d doc) any { return d.ID }

	for i := 0; i < 5; i++ {
		q := []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())}
		want := reference(t, sqlDB, sp, q, "gamma OR delta", hybrid.DefaultCandidates, hybrid.DefaultRRFK, 1, 1)
		got, err := hybrid.Search[doc](ctx, db, q, ftssink.Or(ftssink.Term("gamma"), ftssink.Term("delta")))
		require.NoError(t, err)
		requireFused(t, want[:hybrid.DefaultLimit], got, docKey)
		both, onlyOne := 0, 0
		for _, r := range want {
			if r.vecRank > 0 && r.textRank > 0 {
				both++
			} else {
				onlyOne++
			}
		}
		require.Positive(t, both)
		require.Positive(t, onlyOne)
		for _, r := range got {
			require.False(t, r.Model.DeletedAt.Valid)
		}
	}

	// options: candidates, k, weights, limit, and side options
	q := []float32{1, 0, -1, 0.5}
	want := reference(t, sqlDB, sp, q, "alpha", 20, 5, 2, 0.5, vecsink.WithFilter("lang = ?", "fr"))
	got, err := hybrid.Search[doc](ctx, db, q, ftssink.Term("alpha"),
		hybrid.WithCandidates(20), hybrid.WithRRFK(5), hybrid.WithWeights(2, 0.5), hybrid.WithLimit(100),
		hybrid.WithVecOptions(vecsink.WithFilter("lang = ?", "fr")),
		hybrid.WithTextOptions(ftssink.WithLimit(3), ftssink.WithHighlight("title", "[", "]")))
	require.NoError(t, err)
	requireFused(t, want, got, docKey)
	require.Greater(t, len(got), 20, "the limit covers both candidate lists")
	for _, r := range got {
		if r.VecRank > 0 {
			require.Equal(t, "fr", r.Model.Lang)
		}
		if r.TextRank > 0 {
			require.Contains(t, r.Highlights["title"]+r.Model.Body, "alpha")
			require.Equal(t, r.Model.Title, strings.NewReplacer("[", "", "]", "").Replace(r.Highlights["title"]))
		} else {
			require.Nil(t, r.Highlights)
		}
	}

	// a text weight of 0 leaves the vector order
	vecOnly, err := hybrid.Search[doc](ctx, db, q, ftssink.Term("alpha"), hybrid.WithWeights(1, 0))
	require.NoError(t, err)
	knn, err := vecsink.KNN[doc](ctx, db.Table("docs"), q, hybrid.DefaultLimit)
	require.NoError(t, err)
	for i := range knn {
		require.Equal(t, knn[i].Model.ID, vecOnly[i].Model.ID)
		require.Equal(t, knn[i].Distance, vecOnly[i].Distance)
	}
}

func TestSearchSoftDeleteAndVanishedRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	rng := rand.New(rand.NewPCG(3, 4))
	sp := spec("docs", "id", outbox.KeyInteger, outbox.ModeInTable)
	seed(t, db, &doc{}, sp, 200, func(i int) any { return int64(i) }, rng)
	q := []float32{0.5, 0.5, 0.5, 0.5}
	text := ftssink.Term("beta")

	all, err := hybrid.Search[doc](ctx, db, q, text, hybrid.IncludeDeleted(), hybrid.WithLimit(60))
	require.NoError(t, err)
	deleted := 0
	for _, r := range all {
		if r.Model.DeletedAt.Valid {
			deleted++
		}
	}
	require.Positive(t, deleted, "IncludeDeleted returns soft-deleted rows")

	live, err := hybrid.Search[doc](ctx, db, q, text, hybrid.WithLimit(10))
	require.NoError(t, err)
	require.Len(t, live, 10)
	for _, r := range live {
		require.False(t, r.Model.DeletedAt.Valid)
	}
	// the source rows of the two best results vanish behind the indexer's
	// back: the next candidates fill the page
	require.NoError(t, db.Exec(`DELETE FROM docs WHERE id IN (?, ?)`, live[0].Model.ID, live[1].Model.ID).Error)
	again, err := hybrid.Search[doc](ctx, db, q, text, hybrid.WithLimit(10))
	require.NoError(t, err)
	require.Len(t, again, 10)
	for i := 0; i < 8; i++ {
		require.Equal(t, live[i+2].Model.ID, again[i].Model.ID)
	}
}

func TestSearchTextKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(5, 6))
	sp := spec("pages", "path", outbox.KeyText, outbox.ModeContentless)
	seed(t, db, &page{}, sp, 150, func(i int) any { return fmt.Sprintf("/p/%03d", i) }, rng)
	q := []float32{-1, 0.5, 0, 1}
	want := reference(t, sqlDB, sp, q, "eta", hybrid.DefaultCandidates, hybrid.DefaultRRFK, 1, 1)
	got, err := hybrid.Search[page](ctx, db, q, ftssink.Term("eta"), hybrid.WithLimit(30))
	require.NoError(t, err)
	requireFused(t, want[:30], got, func(p page) any { return p.Path })
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 8))
	sp := spec("docs", "id", outbox.KeyInteger, outbox.ModeInTable)
	seed(t, db, &doc{}, sp, 10, func(i int) any { return int64(i) }, rng)
	q := []float32{1, 2, 3, 4}
	text := ftssink.Term("alpha")
	for name, opt := range map[string]hybrid.Option{
		"limit 0":         hybrid.WithLimit(0),
		"candidates 0":    hybrid.WithCandidates(0),
		"candidates 4097": hybrid.WithCandidates(vecsink.MaxK + 1),
		"rrf k < 0":       hybrid.WithRRFK(-1),
		"rrf k NaN":       hybrid.WithRRFK(math.NaN()),
		"weights 0, 0":    hybrid.WithWeights(0, 0),
		"weight < 0":      hybrid.WithWeights(-1, 1),
		"weight Inf":      hybrid.WithWeights(1, math.Inf(1)),
	} {
		_, err := hybrid.Search[doc](ctx, db, q, text, opt)
		require.ErrorIs(t, err, hybrid.ErrInvalidOption, name)
	}
	_, err = hybrid.Search[doc](ctx, db, []float32{1, 2}, text)
	require.ErrorIs(t, err, vecsink.ErrBadVector)
	_, err = hybrid.Search[doc](ctx, db, q, ftssink.Not(text))
	require.ErrorIs(t, err, ftssink.ErrInvalidQuery)
	_, err = hybrid.Search[doc](ctx, db, q, ftssink.Raw("alpha)"))
	require.ErrorIs(t, err, ftssink.ErrQuerySyntax)
	_, err = hybrid.Search[doc](ctx, db, q, text, hybrid.WithTextOptions(ftssink.WithSnippet("nosuch", "", "", "", 3)))
	require.ErrorIs(t, err, ftssink.ErrInvalidOption)
	_, err = hybrid.Search[page](ctx, db, q, text)
	require.ErrorIs(t, err, outbox.ErrNotRegistered)

	vecOnly := spec("pages", "path", outbox.KeyText, outbox.ModeInTable)
	vecOnly.FTS = nil
	require.NoError(t, db.AutoMigrate(&page{}))
	require.NoError(t, fixture.Register(ctx, sqlDB, vecOnly))
	_, err = hybrid.Search[page](ctx, db, q, text)
	require.ErrorIs(t, err, ftssink.ErrNoFTS)
	ftsOnly := spec("pages", "path", outbox.KeyText, outbox.ModeInTable)
	ftsOnly.Vec = nil
	require.NoError(t, outbox.SaveSpec(ctx, sqlDB, ftsOnly))
	_, err = hybrid.Search[page](ctx, db, q, text)
	require.ErrorIs(t, err, vecsink.ErrNoVec)
}
