package vecsink_test

import (
	"context"
	"database/sql"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// runKNNSQL runs the statement of KNNSQL and returns its first two columns.
func runKNNSQL(t *testing.T, db *sql.DB, stmt string, args []any) ([]int64, []float64) {
	t.Helper()
	rows, err := db.Query(stmt, args...)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var gi []int64
	var gd []float64
	for rows.Next() {
		dest := make([]any, len(cols))
		var id int64
		var d sql.NullFloat64
		dest[0], dest[1] = &id, &d
		for i := 2; i < len(dest); i++ {
			dest[i] = new(any)
		}
		require.NoError(t, rows.Scan(dest...))
		gi = append(gi, id)
		gd = append(gd, d.Float64)
	}
	require.NoError(t, rows.Err())
	return gi, gd
}

// TestKNNSQLRunsWhatKNNRuns checks, for every metric and with options, that
// the statement KNNSQL returns yields exactly KNN's keys and distances.
func TestKNNSQLRunsWhatKNNRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(21, 22))
	seed(t, db, &l2Item{}, outbox.MetricL2, 120, 6, rng)
	seed(t, db, &cosItem{}, outbox.MetricCosine, 120, 6, rng)
	seed(t, db, &dotItem{}, outbox.MetricDot, 120, 6, rng)
	optSets := map[string][]vecsink.Option{
		"none":            nil,
		"filter":          {vecsink.WithFilter("cat = ?", "b")},
		"include deleted": {vecsink.IncludeDeleted()},
		"order":           {vecsink.WithOrderBy("year DESC")},
		"join":            {vecsink.WithJoin("JOIN (SELECT 'a' AS c UNION ALL SELECT 'c') AS keep ON keep.c = cat")},
	}
	check := func(t *testing.T, stmt string, args []any, want []int64, wantD []float64) {
		gi, gd := runKNNSQL(t, sqlDB, stmt, args)
		require.Equal(t, want, gi)
		require.Equal(t, wantD, gd)
	}
	for name, opts := range optSets {
		q := randVec(rng, 6)
		t.Run(name, func(t *testing.T) {
			l2, err := vecsink.KNN[l2Item](ctx, db, q, 15, opts...)
			require.NoError(t, err)
			require.NotEmpty(t, l2)
			stmt, args, err := vecsink.KNNSQL[l2Item](ctx, db, q, 15, opts...)
			require.NoError(t, err)
			gi, gd := ids(l2)
			check(t, stmt, args, gi, gd)

			cos, err := vecsink.KNN[cosItem](ctx, db, q, 15, opts...)
			require.NoError(t, err)
			stmt, args, err = vecsink.KNNSQL[cosItem](ctx, db, q, 15, opts...)
			require.NoError(t, err)
			gi, gd = ids(cos)
			check(t, stmt, args, gi, gd)

			dot, err := vecsink.KNN[dotItem](ctx, db, q, 15, opts...)
			require.NoError(t, err)
			stmt, args, err = vecsink.KNNSQL[dotItem](ctx, db, q, 15, opts...)
			require.NoError(t, err)
			gi, gd = ids(dot)
			check(t, stmt, args, gi, gd)
		})
	}
}

// TestWithOrderByReordersTheKNearest: the k rows are the k nearest, then
// ordered by the expression, then by distance.
func TestWithOrderByReordersTheKNearest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	rng := rand.New(rand.NewPCG(23, 24))
	_, rows := seed(t, db, &l2Item{}, outbox.MetricL2, 80, 4, rng)
	q := randVec(rng, 4)
	near := bruteForce(outbox.MetricL2, rows, q, 12, live)
	got, err := vecsink.KNN[l2Item](ctx, db, q, 12, vecsink.WithOrderBy("l2_items.year DESC"))
	require.NoError(t, err)
	require.Len(t, got, 12)
	var wantIDs, gotIDs []int64
	for _, r := range near {
		wantIDs = append(wantIDs, r.id)
	}
	for i, r := range got {
		gotIDs = append(gotIDs, r.Model.ID)
		if i > 0 {
			p := got[i-1]
			require.GreaterOrEqual(t, p.Model.Year, r.Model.Year, "year DESC first")
			if p.Model.Year == r.Model.Year {
				require.LessOrEqual(t, p.Distance, r.Distance, "then distance")
			}
		}
	}
	require.ElementsMatch(t, wantIDs, gotIDs, "the same k nearest rows")
	// an argument in the ordering is bound
	got, err = vecsink.KNN[l2Item](ctx, db, q, 12, vecsink.WithOrderBy("abs(l2_items.year - ?)", 2010))
	require.NoError(t, err)
	for i := 1; i < len(got); i++ {
		require.LessOrEqual(t, math.Abs(float64(got[i-1].Model.Year-2010)), math.Abs(float64(got[i].Model.Year-2010)))
	}
}

type kAuthor struct {
	ID   uint
	Name string
}

type kPost struct {
	ID        uint
	AuthorID  uint
	Title     string
	Embedding vecsink.Embedding `vec:"dim=2;metric=l2"`
	DeletedAt gorm.DeletedAt
}

// kPostRow is a DTO: the post's key and distance, its title and its
// author's name from a joined table.
type kPostRow struct {
	ID         uint
	Distance   float64
	Title      string
	AuthorName string
}

// pipelineDB migrates the models with the capture plugin and returns a
// function that applies what was written.
func pipelineDB(t *testing.T, models ...any) (*gorm.DB, func()) {
	t.Helper()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, models...))
	ix, err := indexer.New(db)
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return db, func() {
		_, err := ix.Drain(context.Background())
		require.NoError(t, err)
	}
}

func TestKNNSQLJoinScansIntoDTO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, drain := pipelineDB(t, &kPost{})
	require.NoError(t, db.AutoMigrate(&kAuthor{}))
	require.NoError(t, db.Create(&[]kAuthor{{ID: 1, Name: "ann"}, {ID: 2, Name: "bob"}}).Error)
	posts := []kPost{
		{AuthorID: 1, Title: "p1", Embedding: vecsink.Embedding{1, 0}},
		{AuthorID: 2, Title: "p2", Embedding: vecsink.Embedding{2, 0}},
		{AuthorID: 1, Title: "p3", Embedding: vecsink.Embedding{3, 0}},
		{AuthorID: 2, Title: "p4", Embedding: vecsink.Embedding{4, 0}},
		{AuthorID: 1, Title: "p5", Embedding: vecsink.Embedding{5, 0}},
		{AuthorID: 3, Title: "orphan", Embedding: vecsink.Embedding{0, 0}}, // no author row
	}
	require.NoError(t, db.Create(&posts).Error)
	require.NoError(t, db.Delete(&posts[2]).Error) // p3 soft-deleted
	drain()

	q := []float32{0, 0}
	stmt, args, err := vecsink.KNNSQL[kPost](ctx, db, q, 4,
		vecsink.WithJoin("JOIN k_authors ON k_authors.id = k_posts.author_id"),
		vecsink.WithSelect("k_posts.title", "k_authors.name AS author_name"))
	require.NoError(t, err)
	var got []kPostRow
	require.NoError(t, db.Raw(stmt, args...).Scan(&got).Error)
	// the 4 nearest live posts are orphan, p1, p2, p4: the inner join drops orphan
	require.Equal(t, []kPostRow{
		{ID: posts[0].ID, Distance: 1, Title: "p1", AuthorName: "ann"},
		{ID: posts[1].ID, Distance: 2, Title: "p2", AuthorName: "bob"},
		{ID: posts[3].ID, Distance: 4, Title: "p4", AuthorName: "bob"},
	}, got)

	// KNN honours the join (as a filter, with a bound argument) and the ordering
	res, err := vecsink.KNN[kPost](ctx, db, q, 5,
		vecsink.WithJoin("JOIN k_authors ON k_authors.id = k_posts.author_id AND k_authors.name = ?", "bob"),
		vecsink.WithOrderBy("distance DESC"))
	require.NoError(t, err)
	var titles []string
	for _, r := range res {
		titles = append(titles, r.Model.Title)
	}
	require.Equal(t, []string{"p4", "p2"}, titles)

	// a LEFT JOIN keeps every neighbour; several rows per neighbour: KNN keeps one
	res, err = vecsink.KNN[kPost](ctx, db, q, 3, vecsink.WithJoin("LEFT JOIN k_authors ON k_authors.id = k_posts.author_id OR k_authors.id > 0"))
	require.NoError(t, err)
	require.Len(t, res, 3)
	require.Equal(t, "orphan", res[0].Model.Title)
	stmt, args, err = vecsink.KNNSQL[kPost](ctx, db, q, 3, vecsink.WithJoin("LEFT JOIN k_authors ON k_authors.id = k_posts.author_id OR k_authors.id > 0"))
	require.NoError(t, err)
	var all []kPostRow
	require.NoError(t, db.Raw(stmt, args...).Scan(&all).Error)
	require.Len(t, all, 6, "KNNSQL returns every joined row")
}

// The seed library's KNNSQL scenarios, on our API.
func TestKNNSQLSoftDeleteFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pipelineDB(t, &kPost{})
	q := []float32{1, 0}
	stmt, _, err := vecsink.KNNSQL[kPost](ctx, db, q, 5)
	require.NoError(t, err)
	require.Contains(t, stmt, "deleted = 0")
	stmt, _, err = vecsink.KNNSQL[kPost](ctx, db, q, 5, vecsink.IncludeDeleted())
	require.NoError(t, err)
	require.NotContains(t, stmt, "deleted = 0")

	// soft-delete filter, WithFilter, WithJoin and WithSelect coexist
	stmt, args, err := vecsink.KNNSQL[kPost](ctx, db, q, 5,
		vecsink.WithJoin("JOIN k_authors s ON s.id = k_posts.author_id"),
		vecsink.WithSelect("s.name"),
		vecsink.WithFilter("rowid IN (SELECT value FROM json_each(?))", "[1,2]"))
	require.NoError(t, err)
	for _, part := range []string{"deleted = 0", "JOIN k_authors s", "s.name", "rowid IN (SELECT value FROM json_each(?))"} {
		require.Contains(t, stmt, part)
	}
	require.Len(t, args, 3, "the vector, k and the filter's argument")
	require.Equal(t, 5, args[1])
	require.Equal(t, "[1,2]", args[2])
}

func TestKNNSQLBindsEveryValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pipelineDB(t, &kPost{})
	hostile := `x'); DROP TABLE k_posts; --`
	stmt, args, err := vecsink.KNNSQL[kPost](ctx, db, []float32{1, 0}, 5,
		vecsink.WithJoin("LEFT JOIN k_posts AS other ON other.title = ?", hostile),
		vecsink.WithOrderBy("other.title = ?", hostile))
	require.NoError(t, err)
	require.NotContains(t, stmt, "DROP")
	require.Contains(t, args, hostile)
	var rows []kPostRow
	require.NoError(t, db.Raw(stmt, args...).Scan(&rows).Error)
	require.True(t, db.Migrator().HasTable(&kPost{}))
}

func TestKNNOptionErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pipelineDB(t, &kPost{})
	q := []float32{1, 0}
	for name, c := range map[string]struct {
		opt  vecsink.Option
		want string
	}{
		"empty join":          {vecsink.WithJoin(""), "WithJoin"},
		"blank join":          {vecsink.WithJoin("  "), "empty join clause"},
		"join without JOIN":   {vecsink.WithJoin("k_authors ON 1"), "must start with JOIN"},
		"right join":          {vecsink.WithJoin("RIGHT JOIN k_authors ON 1"), "RIGHT"},
		"join with where":     {vecsink.WithJoin("JOIN k_authors ON 1 WHERE 1"), "WHERE"},
		"join args mismatch":  {vecsink.WithJoin("JOIN k_authors ON k_authors.name = ?"), "1 ? placeholders but 0 arguments"},
		"select statement":    {vecsink.WithSelect("1; DROP TABLE k_posts"), "';'"},
		"select comment":      {vecsink.WithSelect("title -- x"), "comment"},
		"select from":         {vecsink.WithSelect("title FROM k_posts"), "FROM"},
		"select union":        {vecsink.WithSelect("1 UNION SELECT name FROM sqlite_master"), "UNION"},
		"select quote":        {vecsink.WithSelect("'abc"), "unterminated"},
		"select paren":        {vecsink.WithSelect("max(1"), "unclosed"},
		"select empty":        {vecsink.WithSelect(""), "empty result columns"},
		"select placeholder":  {vecsink.WithSelect("?"), "placeholders"},
		"order limit":         {vecsink.WithOrderBy("distance LIMIT 1"), "LIMIT"},
		"order named param":   {vecsink.WithOrderBy("abs(year - :y)"), "named parameter"},
		"filter numbered":     {vecsink.WithFilter("rowid = ?1", 1), "numbered parameter"},
		"filter args":         {vecsink.WithFilter("rowid = ?", 1, 2), "1 ? placeholders but 2 arguments"},
		"filter empty":        {vecsink.WithFilter(""), "empty condition"},
		"filter closes paren": {vecsink.WithFilter("1) OR (1"), "unbalanced"},
	} {
		_, _, err := vecsink.KNNSQL[kPost](ctx, db, q, 3, c.opt)
		require.ErrorIs(t, err, vecsink.ErrInvalidOption, name)
		require.ErrorContains(t, err, c.want, name)
		_, err = vecsink.KNN[kPost](ctx, db, q, 3, c.opt)
		require.ErrorIs(t, err, vecsink.ErrInvalidOption, name)
	}
	// WithSelect is for KNNSQL only (the seed's TestKNN_Bridge_RejectsWithSelect)
	_, err := vecsink.KNN[kPost](ctx, db, q, 1, vecsink.WithSelect("title"))
	require.ErrorIs(t, err, vecsink.ErrInvalidOption)
	require.ErrorContains(t, err, "WithSelect")
	require.ErrorContains(t, err, "KNNSQL")
	// KNNSQL validates like KNN
	_, _, err = vecsink.KNNSQL[kPost](ctx, db, q, 0)
	require.ErrorIs(t, err, vecsink.ErrInvalidK)
	_, _, err = vecsink.KNNSQL[kPost](ctx, db, []float32{1}, 1)
	require.ErrorIs(t, err, vecsink.ErrBadVector)
	_, _, err = vecsink.KNNSQL[kAuthor](ctx, db, q, 1)
	require.ErrorIs(t, err, outbox.ErrNotRegistered)
	// fragments that pass the lexical checks but not SQLite's
	_, err = vecsink.KNN[kPost](ctx, db, q, 3, vecsink.WithOrderBy("no_such_column"))
	require.ErrorContains(t, err, "no_such_column")
}

// TestKNNTextKeysWithJoin covers text keys (vec0 "id" column) through the
// wrapped statement.
func TestKNNTextKeysWithJoin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type tag struct {
		Code      string `gorm:"primaryKey"`
		Label     string
		Embedding vecsink.Embedding `vec:"dim=2;metric=cosine"`
	}
	db, drain := pipelineDB(t, &tag{})
	in := []tag{{Code: "b", Label: "B", Embedding: vecsink.Embedding{1, 0.1}}, {Code: "a", Label: "A", Embedding: vecsink.Embedding{1, 0.1}}, {Code: "c", Label: "C", Embedding: vecsink.Embedding{0, 1}}}
	require.NoError(t, db.Create(&in).Error)
	drain()
	res, err := vecsink.KNN[tag](ctx, db, []float32{1, 0}, 3, vecsink.WithOrderBy("tags.label DESC"))
	require.NoError(t, err)
	var codes []string
	for _, r := range res {
		codes = append(codes, r.Model.Code)
	}
	require.Equal(t, []string{"c", "b", "a"}, codes)
	// equal distances: ties by key
	res, err = vecsink.KNN[tag](ctx, db, []float32{1, 0}, 2)
	require.NoError(t, err)
	require.Equal(t, "a", res[0].Model.Code)
	require.Equal(t, "b", res[1].Model.Code)
	stmt, args, err := vecsink.KNNSQL[tag](ctx, db, []float32{1, 0}, 3, vecsink.WithSelect("tags.label"))
	require.NoError(t, err)
	var rows []struct {
		Code     string
		Distance float64
		Label    string
	}
	require.NoError(t, db.Raw(stmt, args...).Scan(&rows).Error)
	require.Len(t, rows, 3)
	labels := []string{rows[0].Label, rows[1].Label, rows[2].Label}
	require.Equal(t, []string{"A", "B", "C"}, labels)
	require.True(t, sort.SliceIsSorted(rows, func(i, j int) bool { return rows[i].Distance < rows[j].Distance }))
	for _, r := range rows {
		require.Equal(t, strings.ToLower(r.Label), r.Code, "the key column carries the primary key")
	}
}
