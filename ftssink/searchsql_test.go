package ftssink_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// runSearchSQL runs a SearchSQL statement and returns its key and rank
// columns.
func runSearchSQL(t *testing.T, db *sql.DB, stmt string, args []any) []rawHit {
	t.Helper()
	rows, err := db.Query(stmt, args...)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var out []rawHit
	for rows.Next() {
		var h rawHit
		dest := []any{&h.id, &h.rank}
		for len(dest) < len(cols) {
			dest = append(dest, new(any))
		}
		require.NoError(t, rows.Scan(dest...))
		out = append(out, h)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestSearchSQLRunsWhatSearchRuns checks, in the three modes and with
// options, that the statement of SearchSQL yields exactly Search's hits.
func TestSearchSQLRunsWhatSearchRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(31, 32))
	seedArticles(t, db, &extArticle{}, outbox.ModeExternal, 200, rng)
	seedArticles(t, db, &inArticle{}, outbox.ModeInTable, 200, rng)
	seedArticles(t, db, &clArticle{}, outbox.ModeContentless, 200, rng)
	optSets := [][]ftssink.Option{
		nil,
		{ftssink.WithLimit(7), ftssink.WithOffset(3), ftssink.WithRanking(5, 1)},
		{ftssink.WithFilter("views % 2 = ?", 0), ftssink.WithLimit(15)},
		{ftssink.IncludeDeleted(), ftssink.WithOrderBy("views DESC")},
		{ftssink.WithJoin("JOIN (SELECT 1 AS one) AS j ON j.one = 1"), ftssink.WithFilter("views > ?", 50)},
	}
	for i, opts := range optSets {
		for _, q := range []ftssink.Query{ftssink.Term("alpha"), ftssink.Or(ftssink.Term("beta"), ftssink.Prefix("dat")), ftssink.Near(4, "alpha", "beta")} {
			t.Run(fmt.Sprintf("%d/%s", i, q), func(t *testing.T) {
				ext, err := ftssink.Search[extArticle](ctx, db, q, opts...)
				require.NoError(t, err)
				stmt, args, err := ftssink.SearchSQL[extArticle](ctx, db, q, opts...)
				require.NoError(t, err)
				require.Equal(t, hitsOf(ext), runSearchSQL(t, sqlDB, stmt, args))

				in, err := ftssink.Search[inArticle](ctx, db, q, opts...)
				require.NoError(t, err)
				stmt, args, err = ftssink.SearchSQL[inArticle](ctx, db, q, opts...)
				require.NoError(t, err)
				require.Equal(t, hitsOf(in), runSearchSQL(t, sqlDB, stmt, args))

				cl, err := ftssink.Search[clArticle](ctx, db, q, opts...)
				require.NoError(t, err)
				stmt, args, err = ftssink.SearchSQL[clArticle](ctx, db, q, opts...)
				require.NoError(t, err)
				require.Equal(t, hitsOf(cl), runSearchSQL(t, sqlDB, stmt, args))
			})
		}
	}
}

type fAuthor struct {
	ID   uint
	Name string
}

// fDoc is a multi-tenant model: tenant, status and author live only in the
// source table.
type fDoc struct {
	ID        uint
	Tenant    string
	Status    string
	AuthorID  uint
	Title     string `fts5:"tokenize=porter+unicode61"`
	Body      string `fts5:""`
	DeletedAt gorm.DeletedAt
}

func ftsPipeline(t *testing.T, models ...any) (*gorm.DB, func()) {
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

// seedDocs writes 60 documents that all contain "fox": tenant a for ids
// divisible by 3, b otherwise; the fewer foxes, the worse the rank, and
// tenant b's documents have more foxes, so they fill the top of the ranking.
func seedDocs(t *testing.T, db *gorm.DB) []fDoc {
	t.Helper()
	require.NoError(t, db.AutoMigrate(&fAuthor{}))
	require.NoError(t, db.Create(&[]fAuthor{{ID: 1, Name: "ann"}, {ID: 2, Name: "bob"}}).Error)
	var docs []fDoc
	for i := 1; i <= 60; i++ {
		d := fDoc{Tenant: "b", Status: "published", AuthorID: uint(1 + i%2), Title: fmt.Sprintf("doc %d", i), Body: "fox fox fox fox lorem ipsum"}
		if i%3 == 0 {
			d.Tenant, d.Body = "a", "fox lorem ipsum dolor sit amet consectetur adipiscing elit sed do"
		}
		if i%10 == 0 {
			d.Status = "draft"
		}
		docs = append(docs, d)
	}
	require.NoError(t, db.Create(&docs).Error)
	return docs
}

// TestWithFilterAppliesBeforeTheLimit is item 4 of issue 14: a filtered
// query still returns limit hits when that many match.
func TestWithFilterAppliesBeforeTheLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, drain := ftsPipeline(t, &fDoc{})
	docs := seedDocs(t, db)
	drain()
	tenantOf := map[uint]fDoc{}
	for _, d := range docs {
		tenantOf[d.ID] = d
	}
	// unfiltered, the best 10 are all tenant b: filtering them afterwards
	// would leave nothing
	top, err := ftssink.Search[fDoc](ctx, db, ftssink.Term("fox"), ftssink.WithLimit(10))
	require.NoError(t, err)
	require.Len(t, top, 10)
	for _, h := range top {
		require.Equal(t, "b", h.Model.Tenant)
	}
	hits, err := ftssink.Search[fDoc](ctx, db, ftssink.Term("fox"), ftssink.WithFilter("f_docs.tenant = ?", "a"), ftssink.WithLimit(10))
	require.NoError(t, err)
	require.Len(t, hits, 10, "20 documents of tenant a match: the limit is filled")
	for i, h := range hits {
		require.Equal(t, "a", h.Model.Tenant)
		if i > 0 {
			require.LessOrEqual(t, hits[i-1].Rank, h.Rank)
		}
	}
	// two filters with several arguments, paging
	var all []uint
	for off := 0; ; off += 5 {
		page, err := ftssink.Search[fDoc](ctx, db, ftssink.Term("fox"),
			ftssink.WithFilter("tenant = ? AND status = ?", "a", "published"), ftssink.WithFilter("f_docs.id > ?", 10),
			ftssink.WithLimit(5), ftssink.WithOffset(off))
		require.NoError(t, err)
		for _, h := range page {
			all = append(all, h.Model.ID)
		}
		if len(page) < 5 {
			break
		}
	}
	var want []uint
	for _, d := range docs {
		if d.Tenant == "a" && d.Status == "published" && d.ID > 10 {
			want = append(want, d.ID)
		}
	}
	require.ElementsMatch(t, want, all)
	require.Len(t, all, 15)

	// soft-deleted rows stay excluded, the filter does not reopen them
	require.NoError(t, db.Delete(&fDoc{}, hits[0].Model.ID).Error)
	drain()
	again, err := ftssink.Search[fDoc](ctx, db, ftssink.Term("fox"), ftssink.WithFilter("f_docs.tenant = ?", "a"), ftssink.WithLimit(100))
	require.NoError(t, err)
	require.Len(t, again, 19)
}

type fNote struct {
	Slug   string `gorm:"primaryKey"`
	Tenant string
	Text   string `fts5:"contentless=true"`
}

func TestWithFilterTextKeysContentless(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, drain := ftsPipeline(t, &fNote{})
	for i := 0; i < 30; i++ {
		tenant := "x"
		if i%2 == 0 {
			tenant = "y"
		}
		require.NoError(t, db.Create(&fNote{Slug: fmt.Sprintf("n%02d", i), Tenant: tenant, Text: "wolf pack"}).Error)
	}
	drain()
	hits, err := ftssink.Search[fNote](ctx, db, ftssink.Term("wolf"), ftssink.WithFilter("tenant = ?", "y"), ftssink.WithLimit(8), ftssink.WithOrderBy("f_notes.slug DESC"))
	require.NoError(t, err)
	require.Len(t, hits, 8)
	for i, h := range hits {
		require.Equal(t, "y", h.Model.Tenant)
		require.Equal(t, fmt.Sprintf("n%02d", 28-2*i), h.Model.Slug)
	}
}

// fDocRow is a DTO with a column of a joined table.
type fDocRow struct {
	ID         uint
	Rank       float64 `gorm:"column:oi_rank"`
	Title      string
	AuthorName string
	Snippet    string `gorm:"column:snippet_body"`
}

func TestSearchSQLJoinScansIntoDTO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, drain := ftsPipeline(t, &fDoc{})
	docs := seedDocs(t, db)
	drain()
	stmt, args, err := ftssink.SearchSQL[fDoc](ctx, db, ftssink.Term("fox"),
		ftssink.WithJoin("JOIN f_authors ON f_authors.id = f_docs.author_id"),
		ftssink.WithSelect("f_docs.title", "f_authors.name AS author_name"),
		ftssink.WithSnippet("body", "[", "]", "…", 3),
		ftssink.WithFilter("f_authors.name = ?", "ann"),
		ftssink.WithLimit(50))
	require.NoError(t, err)
	var rows []fDocRow
	require.NoError(t, db.Raw(stmt, args...).Scan(&rows).Error)
	want := 0
	for _, d := range docs {
		if d.AuthorID == 1 {
			want++
		}
	}
	require.Len(t, rows, want)
	for i, r := range rows {
		require.Equal(t, "ann", r.AuthorName)
		require.Equal(t, docs[r.ID-1].Title, r.Title)
		require.Contains(t, r.Snippet, "[fox]")
		if i > 0 {
			require.LessOrEqual(t, rows[i-1].Rank, r.Rank)
		}
	}
	// the seed's TestSearchSQL_Bridge_WithJoinExecutes: one row for one match
	require.NoError(t, db.Create(&fDoc{Tenant: "c", Title: "unique", Body: "the quick brown zebra", AuthorID: 2}).Error)
	drain()
	stmt, args, err = ftssink.SearchSQL[fDoc](ctx, db, ftssink.Term("zebra"),
		ftssink.WithSelect("f_docs.id, f_docs.title"),
		ftssink.WithJoin("JOIN f_authors ON f_authors.id = f_docs.author_id"))
	require.NoError(t, err)
	var one []struct{ Title string }
	require.NoError(t, db.Raw(stmt, args...).Scan(&one).Error)
	require.Equal(t, []struct{ Title string }{{"unique"}}, one)

	// Search honours joins and orderings before the limit
	hits, err := ftssink.Search[fDoc](ctx, db, ftssink.Term("fox"),
		ftssink.WithJoin("JOIN f_authors ON f_authors.id = f_docs.author_id AND f_authors.name = ?", "bob"),
		ftssink.WithOrderBy("f_docs.id DESC"), ftssink.WithLimit(3))
	require.NoError(t, err)
	require.Len(t, hits, 3)
	require.Equal(t, []uint{59, 57, 55}, []uint{hits[0].Model.ID, hits[1].Model.ID, hits[2].Model.ID})
}

// The seed's SearchSQL and WithFilter scenarios, on our API.
func TestSearchSQLSeedScenarios(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, drain := ftsPipeline(t, &fDoc{})
	stmt, _, err := ftssink.SearchSQL[fDoc](ctx, db, ftssink.Term("hello"))
	require.NoError(t, err)
	require.Contains(t, stmt, `"deleted_at" IS NULL`, "external mode reads the source's soft-delete column")
	stmt, _, err = ftssink.SearchSQL[fDoc](ctx, db, ftssink.Term("hello"), ftssink.IncludeDeleted())
	require.NoError(t, err)
	require.NotContains(t, stmt, "deleted_at")

	require.NoError(t, db.Create(&[]fDoc{
		{Tenant: "a", Status: "note", Body: "alpha"}, {Tenant: "a", Status: "todo", Body: "alpha"}, {Tenant: "b", Status: "note", Body: "alpha"},
		{Tenant: "a", Body: "hello world"}, {Tenant: "b", Body: "hello there"}, {Tenant: "a", Body: "goodbye world"},
		{Tenant: "a", Body: "fox fox fox"}, {Tenant: "a", Body: "fox"}, {Tenant: "b", Body: "fox fox fox fox"},
	}).Error)
	drain()
	// TestSearch_WithFilter
	for tenant, id := range map[string]uint{"a": 4, "b": 5} {
		hits, err := ftssink.Search[fDoc](ctx, db, ftssink.Term("hello"), ftssink.WithFilter("tenant = ?", tenant))
		require.NoError(t, err)
		require.Len(t, hits, 1)
		require.Equal(t, id, hits[0].Model.ID)
	}
	// TestSearch_WithFilter_AndRanking
	hits, err := ftssink.Search[fDoc](ctx, db, ftssink.Term("fox"), ftssink.WithRanking(1, 1), ftssink.WithFilter("tenant = ?", "a"))
	require.NoError(t, err)
	require.Len(t, hits, 2)
	require.Equal(t, uint(7), hits[0].Model.ID)
	require.Negative(t, hits[0].Rank)
	// TestSearch_WithFilter_BindArgs
	hits, err = ftssink.Search[fDoc](ctx, db, ftssink.Term("alpha"), ftssink.WithFilter("tenant = ? AND status = ?", "a", "note"))
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, uint(1), hits[0].Model.ID)
	// TestSearch_WithFilter_WrongColumn: the error names the column
	_, err = ftssink.Search[fDoc](ctx, db, ftssink.Term("hello"), ftssink.WithFilter("nonexistent_column = ?", "x"))
	require.ErrorIs(t, err, ftssink.ErrInvalidOption)
	require.ErrorContains(t, err, "nonexistent_column")
	// TestSearch_Bridge_RejectsWithSelect
	_, err = ftssink.Search[fDoc](ctx, db, ftssink.Term("x"), ftssink.WithSelect("extra"))
	require.ErrorIs(t, err, ftssink.ErrInvalidOption)
	require.ErrorContains(t, err, "WithSelect")
	require.ErrorContains(t, err, "SearchSQL")
}

func TestSearchFragmentErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := ftsPipeline(t, &fDoc{})
	q := ftssink.Term("fox")
	for name, c := range map[string]struct {
		opt  ftssink.Option
		want string
	}{
		"empty filter":     {ftssink.WithFilter(""), "empty condition"},
		"filter separator": {ftssink.WithFilter("1; DELETE FROM f_docs"), "';'"},
		"filter args":      {ftssink.WithFilter("tenant = ?"), "1 ? placeholders but 0 arguments"},
		"filter order":     {ftssink.WithFilter("1 ORDER BY 1"), "ORDER"},
		"empty join":       {ftssink.WithJoin(""), "empty join clause"},
		"join natural":     {ftssink.WithJoin("NATURAL JOIN f_authors"), "NATURAL"},
		"select from":      {ftssink.WithSelect("name FROM f_authors"), "FROM"},
		"select comment":   {ftssink.WithSelect("name /* x */"), "comment"},
		"order offset":     {ftssink.WithOrderBy("1 OFFSET 3"), "OFFSET"},
	} {
		_, _, err := ftssink.SearchSQL[fDoc](ctx, db, q, c.opt)
		require.ErrorIs(t, err, ftssink.ErrInvalidOption, name)
		require.ErrorContains(t, err, c.want, name)
	}
	// fragments SQLite cannot compile: found when Search prepares the statement
	for name, c := range map[string]struct {
		opt  ftssink.Option
		want string
	}{
		"ambiguous column":    {ftssink.WithFilter("title = ?", "x"), "ambiguous column name: title"},
		"unknown join table":  {ftssink.WithJoin("JOIN nosuch ON 1"), "no such table: nosuch"},
		"unknown order field": {ftssink.WithOrderBy("nosuch"), "nosuch"},
		"filter separator":    {ftssink.WithFilter("1; DELETE FROM f_docs"), "';'"},
	} {
		_, err := ftssink.Search[fDoc](ctx, db, q, c.opt)
		require.ErrorIs(t, err, ftssink.ErrInvalidOption, name)
		require.NotErrorIs(t, err, ftssink.ErrQuerySyntax, name)
		require.ErrorContains(t, err, c.want, name)
	}
	// the MATCH expression's errors stay ErrQuerySyntax with fragments
	_, err := ftssink.Search[fDoc](ctx, db, ftssink.Raw("fox)"), ftssink.WithFilter("tenant = ?", "a"))
	require.ErrorIs(t, err, ftssink.ErrQuerySyntax)
	// SearchSQL validates like Search
	_, _, err = ftssink.SearchSQL[fDoc](ctx, db, q, ftssink.WithLimit(0))
	require.ErrorIs(t, err, ftssink.ErrInvalidOption)
	_, _, err = ftssink.SearchSQL[fDoc](ctx, db, ftssink.Not(q))
	require.ErrorIs(t, err, ftssink.ErrInvalidQuery)
	_, _, err = ftssink.SearchSQL[fAuthor](ctx, db, q)
	require.ErrorIs(t, err, outbox.ErrNotRegistered)
	// values are bound, never in the SQL text
	hostile := `') OR 1=1; DROP TABLE f_docs; --`
	stmt, args, err := ftssink.SearchSQL[fDoc](ctx, db, ftssink.Term(hostile), ftssink.WithFilter("tenant = ?", hostile))
	require.NoError(t, err)
	require.NotContains(t, stmt, "DROP")
	require.Contains(t, args, hostile)
}

// TestSearchSQLPlanStartsFromTheMatch checks that with a join and a filter
// SQLite still runs the MATCH first and looks the other tables up by key:
// the FTS5 table is the outer loop.
func TestSearchSQLPlanStartsFromTheMatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, drain := ftsPipeline(t, &fDoc{}, &fNote{})
	seedDocs(t, db)
	drain()
	for _, c := range []struct {
		stmt func() (string, []any, error)
		fts  string
	}{
		{func() (string, []any, error) {
			return ftssink.SearchSQL[fDoc](ctx, db, ftssink.Term("fox"),
				ftssink.WithJoin("LEFT JOIN f_authors ON f_authors.id = f_docs.author_id"),
				ftssink.WithJoin("JOIN f_authors AS a2 ON a2.id = f_docs.author_id"),
				ftssink.WithFilter("f_docs.tenant = ?", "a"), ftssink.WithOrderBy("f_authors.name"))
		}, "f_docs_fts"},
		{func() (string, []any, error) {
			return ftssink.SearchSQL[fNote](ctx, db, ftssink.Term("wolf"), ftssink.WithFilter("tenant = ?", "y"))
		}, "f_notes_fts"},
	} {
		stmt, args, err := c.stmt()
		require.NoError(t, err)
		rows, err := db.Raw("EXPLAIN QUERY PLAN "+stmt, args...).Rows()
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &notused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Close())
		require.NotEmpty(t, plan)
		require.Contains(t, plan[0], "SCAN "+c.fts+" VIRTUAL TABLE", "plan %q", plan)
		for _, p := range plan[1:] {
			require.NotContains(t, p, "SCAN f_", "plan %q: every other table is searched by key", plan)
		}
	}
}
