package vecsink_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/tests/fixture"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

type Base struct {
	ID        int64 `gorm:"primaryKey"`
	Name      string
	Cat       string
	Year      int
	DeletedAt gorm.DeletedAt `gorm:"index"`
}

type l2Item struct{ Base }
type cosItem struct{ Base }
type dotItem struct{ Base }

func (l2Item) TableName() string  { return "l2_items" }
func (cosItem) TableName() string { return "cos_items" }
func (dotItem) TableName() string { return "dot_items" }

// textItem has a text primary key.
type textItem struct {
	Code      string `gorm:"primaryKey"`
	Name      string
	DeletedAt gorm.DeletedAt
}

// plainItem has no soft-delete column.
type plainItem struct {
	ID   int64
	Name string
}

func vecSpec(table, key, keyType, softDelete, metric string, dim int, meta ...outbox.MetaCol) *outbox.Spec {
	return &outbox.Spec{
		Version: outbox.SpecVersion, Source: table, Key: key, KeyType: keyType, SoftDelete: softDelete,
		Vec: &outbox.VecSpec{Table: table + "_vec", Column: "embedding", Dim: dim, Metric: metric, Encoding: outbox.EncodingBinary, Metadata: meta},
	}
}

var itemMeta = []outbox.MetaCol{{Name: "cat", Type: "text"}, {Name: "year", Type: "integer"}}

// row is one source row of the fixture with its vector.
type row struct {
	id      int64
	cat     string
	year    int
	deleted bool
	vec     []float32
}

// seed creates n rows of model (a *l2Item, *cosItem or *dotItem) with random
// vectors of dim, about one in five soft-deleted, and indexes them directly.
func seed(t testing.TB, db *gorm.DB, model any, metric string, n, dim int, rng *rand.Rand) (*outbox.Spec, []row) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.AutoMigrate(model))
	stmt := &gorm.Statement{DB: db}
	require.NoError(t, stmt.Parse(model))
	table := stmt.Schema.Table
	spec := vecSpec(table, "id", outbox.KeyInteger, "deleted_at", metric, dim, itemMeta...)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, fixture.Register(ctx, sqlDB, spec))
	rows := make([]row, n)
	tx, err := sqlDB.Begin()
	require.NoError(t, err)
	for i := range rows {
		r := row{id: int64(i + 1), cat: []string{"a", "b", "c"}[rng.IntN(3)], year: 2000 + rng.IntN(20), deleted: rng.IntN(5) == 0, vec: randVec(rng, dim)}
		rows[i] = r
		var del any
		if r.deleted {
			del = time.Unix(1700000000, 0).UTC()
		}
		_, err := tx.Exec(fmt.Sprintf(`INSERT INTO %s (id, name, cat, year, deleted_at) VALUES (?, ?, ?, ?, ?)`, table), r.id, fmt.Sprint("item ", r.id), r.cat, r.year, del)
		require.NoError(t, err)
		require.NoError(t, fixture.PutVec(ctx, tx, spec, r.id, r.vec, r.deleted, r.cat, r.year))
	}
	require.NoError(t, tx.Commit())
	return spec, rows
}

func randVec(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// bruteDistance computes the metric in float64, with KNN's conventions
// (dot: the negated inner product).
func bruteDistance(metric string, a, b []float32) float64 {
	var dot, na, nb, l2 float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
		l2 += (x - y) * (x - y)
	}
	switch metric {
	case outbox.MetricL2:
		return math.Sqrt(l2)
	case outbox.MetricCosine:
		return 1 - dot/(math.Sqrt(na)*math.Sqrt(nb))
	default:
		return -dot
	}
}

type ranked struct {
	id   int64
	dist float64
}

func bruteForce(metric string, rows []row, q []float32, k int, keep func(row) bool) []ranked {
	var all []ranked
	for _, r := range rows {
		if keep(r) {
			all = append(all, ranked{r.id, bruteDistance(metric, r.vec, q)})
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].dist != all[j].dist {
			return all[i].dist < all[j].dist
		}
		return all[i].id < all[j].id
	})
	return all[:min(k, len(all))]
}

// requireRanking checks that got is the brute-force ranking want: every
// returned key is distinct and reported at its own distance, and the i-th
// result is at the i-th smallest distance (within tol). Keys may swap only
// when their distances are equal within float32 rounding.
func requireRanking(t *testing.T, metric string, rows []row, q []float32, want []ranked, gotIDs []int64, gotDist []float64, tol float64) {
	t.Helper()
	require.Len(t, gotIDs, len(want))
	seen := map[int64]bool{}
	for i := range want {
		require.False(t, seen[gotIDs[i]], "key %d returned twice", gotIDs[i])
		seen[gotIDs[i]] = true
		require.InDelta(t, want[i].dist, gotDist[i], tol, "distance at rank %d", i)
		if gotIDs[i] != want[i].id {
			j := slices.IndexFunc(rows, func(r row) bool { return r.id == gotIDs[i] })
			require.GreaterOrEqual(t, j, 0, "rank %d: unknown key %d", i, gotIDs[i])
			d := bruteDistance(metric, rows[j].vec, q)
			require.InDelta(t, want[i].dist, d, tol, "rank %d: got key %d, brute force says %d", i, gotIDs[i], want[i].id)
		}
	}
}

func live(r row) bool { return !r.deleted }

func ids[T interface{ key() int64 }](rs []vecsink.Result[T]) ([]int64, []float64) {
	var a []int64
	var d []float64
	for _, r := range rs {
		a = append(a, r.Model.key())
		d = append(d, r.Distance)
	}
	return a, d
}

func (b Base) key() int64 { return b.ID }

func TestKNNMatchesBruteForce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	const n, dim = 400, 16
	rng := rand.New(rand.NewPCG(1, 2))
	_, l2Rows := seed(t, db, &l2Item{}, outbox.MetricL2, n, dim, rng)
	_, cosRows := seed(t, db, &cosItem{}, outbox.MetricCosine, n, dim, rng)
	_, dotRows := seed(t, db, &dotItem{}, outbox.MetricDot, n, dim, rng)
	liveCount := 0
	for _, r := range l2Rows {
		if live(r) {
			liveCount++
		}
	}
	for _, k := range []int{1, 10, 57, n} {
		for qi := 0; qi < 5; qi++ {
			q := randVec(rng, dim)
			t.Run(fmt.Sprintf("k=%d/q=%d", k, qi), func(t *testing.T) {
				got, err := vecsink.KNN[l2Item](ctx, db, q, k)
				require.NoError(t, err)
				gi, gd := ids(got)
				requireRanking(t, outbox.MetricL2, l2Rows, q, bruteForce(outbox.MetricL2, l2Rows, q, k, live), gi, gd, 1e-4)

				gotC, err := vecsink.KNN[cosItem](ctx, db, q, k)
				require.NoError(t, err)
				gi, gd = ids(gotC)
				requireRanking(t, outbox.MetricCosine, cosRows, q, bruteForce(outbox.MetricCosine, cosRows, q, k, live), gi, gd, 1e-5)

				gotD, err := vecsink.KNN[dotItem](ctx, db, q, k)
				require.NoError(t, err)
				gi, gd = ids(gotD)
				want := bruteForce(outbox.MetricDot, dotRows, q, k, live)
				requireRanking(t, outbox.MetricDot, dotRows, q, want, gi, gd, 1e-9)
				// dot is exact: the order is the brute-force order itself
				wantIDs := make([]int64, len(want))
				for i := range want {
					wantIDs[i] = want[i].id
				}
				require.Equal(t, wantIDs, gi)
				require.Len(t, gotD, min(k, liveCount))
			})
		}
	}
}

func TestKNNDotLargestInnerProductFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	require.NoError(t, db.AutoMigrate(&dotItem{}))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	spec := vecSpec("dot_items", "id", outbox.KeyInteger, "deleted_at", outbox.MetricDot, 2, itemMeta...)
	require.NoError(t, fixture.Register(ctx, sqlDB, spec))
	// l2 would rank {1,0} first for the query {1,0}; dot ranks the longest
	// vector in that direction first.
	vecs := map[int64][]float32{1: {1, 0}, 2: {10, 0}, 3: {0, 5}, 4: {-3, 1}, 5: {4, 4}}
	for id, v := range vecs {
		require.NoError(t, db.Exec(`INSERT INTO dot_items (id, name, cat, year) VALUES (?, ?, 'a', 2000)`, id, fmt.Sprint(id)).Error)
		require.NoError(t, fixture.PutVec(ctx, sqlDB, spec, id, v, false, "a", 2000))
	}
	got, err := vecsink.KNN[dotItem](ctx, db, []float32{1, 0.5}, 5)
	require.NoError(t, err)
	gi, gd := ids(got)
	require.Equal(t, []int64{2, 5, 3, 1, 4}, gi)
	require.Equal(t, []float64{-10, -6, -2.5, -1, 2.5}, gd)
}

func TestKNNSoftDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	rng := rand.New(rand.NewPCG(3, 4))
	_, rows := seed(t, db, &l2Item{}, outbox.MetricL2, 100, 4, rng)
	_, dotRows := seed(t, db, &dotItem{}, outbox.MetricDot, 100, 4, rng)
	q := randVec(rng, 4)

	got, err := vecsink.KNN[l2Item](ctx, db, q, 100)
	require.NoError(t, err)
	for _, r := range got {
		require.False(t, r.Model.DeletedAt.Valid, "soft-deleted row %d returned by default", r.Model.ID)
	}
	gi, gd := ids(got)
	requireRanking(t, outbox.MetricL2, rows, q, bruteForce(outbox.MetricL2, rows, q, 100, live), gi, gd, 1e-4)

	all, err := vecsink.KNN[l2Item](ctx, db, q, 100, vecsink.IncludeDeleted())
	require.NoError(t, err)
	require.Len(t, all, 100)
	deleted := 0
	for _, r := range all {
		if r.Model.DeletedAt.Valid {
			deleted++
		}
	}
	require.Positive(t, deleted)
	gi, gd = ids(all)
	requireRanking(t, outbox.MetricL2, rows, q, bruteForce(outbox.MetricL2, rows, q, 100, func(row) bool { return true }), gi, gd, 1e-4)

	allDot, err := vecsink.KNN[dotItem](ctx, db, q, 100, vecsink.IncludeDeleted())
	require.NoError(t, err)
	gi, gd = ids(allDot)
	requireRanking(t, outbox.MetricDot, dotRows, q, bruteForce(outbox.MetricDot, dotRows, q, 100, func(row) bool { return true }), gi, gd, 1e-9)
}

func TestKNNFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	rng := rand.New(rand.NewPCG(5, 6))
	_, rows := seed(t, db, &cosItem{}, outbox.MetricCosine, 300, 8, rng)
	_, dotRows := seed(t, db, &dotItem{}, outbox.MetricDot, 300, 8, rng)
	q := randVec(rng, 8)
	keep := func(r row) bool { return live(r) && r.cat == "b" && r.year >= 2010 }

	got, err := vecsink.KNN[cosItem](ctx, db, q, 10, vecsink.WithFilter("cat = ?", "b"), vecsink.WithFilter("year >= ?", 2010))
	require.NoError(t, err)
	gi, gd := ids(got)
	requireRanking(t, outbox.MetricCosine, rows, q, bruteForce(outbox.MetricCosine, rows, q, 10, keep), gi, gd, 1e-5)
	for _, r := range got {
		require.Equal(t, "b", r.Model.Cat)
		require.GreaterOrEqual(t, r.Model.Year, 2010)
	}

	gotD, err := vecsink.KNN[dotItem](ctx, db, q, 10, vecsink.WithFilter("cat = ? AND year >= ?", "b", 2010))
	require.NoError(t, err)
	gi, gd = ids(gotD)
	requireRanking(t, outbox.MetricDot, dotRows, q, bruteForce(outbox.MetricDot, dotRows, q, 10, keep), gi, gd, 1e-9)

	// an IN list on a metadata column and one on the key are applied inside
	// the KNN search too
	gotIn, err := vecsink.KNN[cosItem](ctx, db, q, 3, vecsink.WithFilter("cat IN (?, ?)", "a", "c"), vecsink.WithFilter("rowid IN (SELECT value FROM json_each(?))", "[1,2,3,5,8,13,21,34,55,89,144]"))
	require.NoError(t, err)
	gi, gd = ids(gotIn)
	fib := []int64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144}
	requireRanking(t, outbox.MetricCosine, rows, q, bruteForce(outbox.MetricCosine, rows, q, 3, func(r row) bool { return live(r) && r.cat != "b" && slices.Contains(fib, r.id) }), gi, gd, 1e-5)

	// a filter that sqlite-vec cannot evaluate in a KNN query is an error, not a panic
	_, err = vecsink.KNN[cosItem](ctx, db, q, 3, vecsink.WithFilter("cat LIKE ?", "a%"))
	require.ErrorContains(t, err, "cos_items_vec")
	_, err = vecsink.KNN[cosItem](ctx, db, q, 3, vecsink.WithFilter("no_such_column = 1"))
	require.Error(t, err)
	_, err = vecsink.KNN[cosItem](ctx, db, q, 3, vecsink.WithFilter(""))
	require.ErrorIs(t, err, vecsink.ErrInvalidOption)
}

func TestKNNTextKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	rng := rand.New(rand.NewPCG(7, 8))
	sqlDB, err := db.DB()
	for _, metric := range []string{outbox.MetricL2, outbox.MetricDot} {
		t.Run(metric, func(t *testing.T) {
			tdb := db.Table("text_items_" + metric)
			require.NoError(t, tdb.AutoMigrate(&textItem{}))
			require.NoError(t, err)
			spec := vecSpec("text_items_"+metric, "code", outbox.KeyText, "deleted_at", metric, 3)
			require.NoError(t, fixture.Register(ctx, sqlDB, spec))
			var rows []row
			codes := map[int64]string{}
			for i := int64(1); i <= 50; i++ {
				// keys that look like numbers stay text: "007" is not 7
				code := fmt.Sprintf("%03d", i)
				codes[i] = code
				r := row{id: i, deleted: i%7 == 0, vec: randVec(rng, 3)}
				rows = append(rows, r)
				var del any
				if r.deleted {
					del = time.Now()
				}
				require.NoError(t, db.Exec(fmt.Sprintf(`INSERT INTO text_items_%s (code, name, deleted_at) VALUES (?, ?, ?)`, metric), code, "n"+code, del).Error)
				require.NoError(t, fixture.PutVec(ctx, sqlDB, spec, code, r.vec, r.deleted))
			}
			q := randVec(rng, 3)
			got, err := vecsink.KNN[textItem](ctx, db.Table("text_items_"+metric), q, 20)
			require.NoError(t, err)
			want := bruteForce(metric, rows, q, 20, live)
			require.Len(t, got, len(want))
			for i, w := range want {
				require.InDelta(t, w.dist, got[i].Distance, 1e-4)
				if got[i].Model.Code != codes[w.id] {
					require.InDelta(t, w.dist, got[i].Distance, 1e-5, "rank %d", i)
				}
				require.Equal(t, "n"+got[i].Model.Code, got[i].Model.Name)
			}
			ns, err := vecsink.Neighbors(ctx, sqlDB, spec, q, 20, vecsink.IncludeDeleted())
			require.NoError(t, err)
			require.Len(t, ns, 20)
			for _, nb := range ns {
				require.IsType(t, "", nb.Key)
			}
		})
	}
}

func TestKNNDropsVanishedRowsAndKeepsOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	rng := rand.New(rand.NewPCG(9, 10))
	_, rows := seed(t, db, &l2Item{}, outbox.MetricL2, 60, 4, rng)
	q := randVec(rng, 4)
	want := bruteForce(outbox.MetricL2, rows, q, 10, live)
	// the source row of the second neighbour is deleted behind the indexer's back
	require.NoError(t, db.Exec(`DELETE FROM l2_items WHERE id = ?`, want[1].id).Error)
	got, err := vecsink.KNN[l2Item](ctx, db, q, 10)
	require.NoError(t, err)
	gi, gd := ids(got)
	requireRanking(t, outbox.MetricL2, rows, q, slices.Delete(slices.Clone(want), 1, 2), gi, gd, 1e-4)

	// pointer models work too, and conditions on db filter the loaded models
	ptrs, err := vecsink.KNN[*l2Item](ctx, db.Where("cat = ?", rows[0].cat), q, 10)
	require.NoError(t, err)
	require.NotEmpty(t, ptrs)
	for _, p := range ptrs {
		require.Equal(t, rows[0].cat, p.Model.Cat)
		require.NotEqual(t, want[1].id, p.Model.ID)
	}
}

func TestKNNInsideTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	rng := rand.New(rand.NewPCG(11, 12))
	spec, _ := seed(t, db, &l2Item{}, outbox.MetricL2, 20, 4, rng)
	q := []float32{100, 100, 100, 100}
	err := db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Exec(`INSERT INTO l2_items (id, name, cat, year) VALUES (1000, 'new', 'a', 2020)`).Error)
		require.NoError(t, fixture.PutVec(ctx, tx.Statement.ConnPool, spec, int64(1000), q, false, "a", 2020))
		got, err := vecsink.KNN[l2Item](ctx, tx, q, 1)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, int64(1000), got[0].Model.ID)
		require.Zero(t, got[0].Distance)
		return errors.New("roll back")
	})
	require.EqualError(t, err, "roll back")
	got, err := vecsink.KNN[l2Item](ctx, db, q, 1)
	require.NoError(t, err)
	require.NotEqual(t, int64(1000), got[0].Model.ID)
}

func TestKNNErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	rng := rand.New(rand.NewPCG(13, 14))
	seed(t, db, &cosItem{}, outbox.MetricCosine, 10, 4, rng)
	good := []float32{1, 2, 3, 4}

	for name, c := range map[string]struct {
		q    []float32
		k    int
		want error
	}{
		"short query":   {[]float32{1, 2, 3}, 3, vecsink.ErrBadVector},
		"long query":    {[]float32{1, 2, 3, 4, 5}, 3, vecsink.ErrBadVector},
		"empty query":   {nil, 3, vecsink.ErrBadVector},
		"NaN":           {[]float32{1, float32(math.NaN()), 3, 4}, 3, vecsink.ErrBadVector},
		"Inf":           {[]float32{1, 2, float32(math.Inf(-1)), 4}, 3, vecsink.ErrBadVector},
		"zero cosine":   {[]float32{0, 0, 0, 0}, 3, vecsink.ErrBadVector},
		"k=0":           {good, 0, vecsink.ErrInvalidK},
		"k<0":           {good, -1, vecsink.ErrInvalidK},
		"k above limit": {good, vecsink.MaxK + 1, vecsink.ErrInvalidK},
	} {
		_, err := vecsink.KNN[cosItem](ctx, db, c.q, c.k)
		require.ErrorIs(t, err, c.want, name)
		require.ErrorIs(t, err, c.want, name)
	}
	_, err := vecsink.KNN[cosItem](ctx, db, good, 3)
	require.NoError(t, err)
	_, err = vecsink.KNN[cosItem](ctx, db, []float32{1, 2, 3}, 3)
	require.ErrorContains(t, err, "3 dimensions")
	require.ErrorContains(t, err, "dim=4")
	require.ErrorIs(t, err, outbox.ErrBadVector)
	_, err = vecsink.KNN[cosItem](ctx, db, good, vecsink.MaxK)
	require.NoError(t, err, "k = MaxK is accepted")

	// a model that was never migrated
	_, err = vecsink.KNN[plainItem](ctx, db, good, 3)
	require.ErrorIs(t, err, outbox.ErrNotRegistered)
	require.ErrorContains(t, err, "plain_items")
	_, err = vecsink.KNN[plainItem](ctx, testdb.New(t), good, 3)
	require.ErrorIs(t, err, outbox.ErrNotRegistered, "no registry table at all")

	// a model with only a full-text sidecar
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, db.AutoMigrate(&plainItem{}))
	require.NoError(t, fixture.Register(ctx, sqlDB, &outbox.Spec{
		Version: outbox.SpecVersion, Source: "plain_items", Key: "id", KeyType: outbox.KeyInteger,
		FTS: &outbox.FTSSpec{Table: "plain_items_fts", Mode: outbox.ModeInTable, Columns: []outbox.FTSCol{{Name: "name", Source: "name"}}},
	}))
	_, err = vecsink.KNN[plainItem](ctx, db, good, 3)
	require.ErrorIs(t, err, vecsink.ErrNoVec)
	require.ErrorContains(t, err, "plain_items")
	_, err = vecsink.Neighbors(ctx, sqlDB, nil, good, 3)
	require.ErrorIs(t, err, vecsink.ErrNoVec)

	// a model whose key disagrees with the registry
	_, err = vecsink.KNN[textItem](ctx, db.Table("cos_items"), good, 3)
	require.ErrorIs(t, err, outbox.ErrBadSpec)

	// a cancelled context
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = vecsink.KNN[cosItem](cctx, db, good, 3)
	require.ErrorIs(t, err, context.Canceled)
}

// TestMaxKIsSqliteVecLimit guards MaxK against the engine: vec0 accepts
// k = MaxK and refuses k = MaxK+1.
func TestMaxKIsSqliteVecLimit(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	_, err = sqlDB.Exec(`CREATE VIRTUAL TABLE v USING vec0(e float[1])`)
	require.NoError(t, err)
	_, err = sqlDB.Exec(`INSERT INTO v(rowid, e) VALUES (1, '[1]')`)
	require.NoError(t, err)
	count := func(k int) (int, error) {
		rows, err := sqlDB.Query(`SELECT rowid FROM v WHERE e MATCH '[0]' AND k = ?`, k)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		return n, rows.Err()
	}
	n, err := count(vecsink.MaxK)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = count(vecsink.MaxK + 1)
	require.ErrorContains(t, err, "k value in knn query too large")
}

func TestDotFunction(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	a, err := outbox.EncodeVector([]float32{1, 2, 3}, 3, outbox.EncodingBinary)
	require.NoError(t, err)
	b, err := outbox.EncodeVector([]float32{4, -5, 0.5}, 3, outbox.EncodingBinary)
	require.NoError(t, err)
	var got float64
	require.NoError(t, sqlDB.QueryRow(`SELECT oi_dot(?, ?)`, a, b).Scan(&got))
	require.Equal(t, 4.0-10+1.5, got)
	require.NoError(t, sqlDB.QueryRow(`SELECT oi_dot('[1, 2, 3]', ?)`, b).Scan(&got))
	require.Equal(t, 4.0-10+1.5, got)
	require.NoError(t, sqlDB.QueryRow(`SELECT oi_dot(?, '[1, 2, 3]')`, b).Scan(&got))
	require.Equal(t, 4.0-10+1.5, got)
	var null sql.NullFloat64
	require.NoError(t, sqlDB.QueryRow(`SELECT oi_dot(NULL, ?)`, b).Scan(&null))
	require.False(t, null.Valid)
	err = sqlDB.QueryRow(`SELECT oi_dot(?, ?)`, a, a[:8]).Scan(&got)
	require.ErrorContains(t, err, "oi_dot")
	err = sqlDB.QueryRow(`SELECT oi_dot(1, ?)`, a).Scan(&got)
	require.ErrorContains(t, err, "not a vector")
	err = sqlDB.QueryRow(`SELECT oi_dot(?, X'0102')`, a).Scan(&got)
	require.ErrorContains(t, err, "not a float32 vector")
}
