package ftssink_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/tests/fixture"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// ArticleBase is the shared shape of the test models.
type ArticleBase struct {
	ID        int64 `gorm:"primaryKey"`
	Title     string
	Body      string
	Views     int
	DeletedAt gorm.DeletedAt `gorm:"index"`
}

type extArticle struct{ ArticleBase }
type inArticle struct{ ArticleBase }
type clArticle struct{ ArticleBase }

func (extArticle) TableName() string { return "ext_articles" }
func (inArticle) TableName() string  { return "in_articles" }
func (clArticle) TableName() string  { return "cl_articles" }

// note has a text primary key.
type note struct {
	Slug      string `gorm:"primaryKey"`
	Title     string
	Body      string
	DeletedAt gorm.DeletedAt
}

var vocab = strings.Fields(`alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu
nu xi omicron pi rho sigma tau upsilon phi chi psi omega data database big small not and or near`)

func words(rng *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		// a skewed distribution gives bm25 something to rank
		w[i] = vocab[min(rng.IntN(len(vocab)), rng.IntN(len(vocab)))]
	}
	return strings.Join(w, " ")
}

func ftsSpec(table, key, keyType, mode string, detail string) *outbox.Spec {
	return &outbox.Spec{
		Version: outbox.SpecVersion, Source: table, Key: key, KeyType: keyType, SoftDelete: "deleted_at",
		FTS: &outbox.FTSSpec{Table: table + "_fts", Mode: mode, Tokenize: "porter unicode61", Detail: detail,
			Columns: []outbox.FTSCol{{Name: "title", Source: "title"}, {Name: "body", Source: "body"}}},
	}
}

type article struct {
	id          int64
	title, body string
	deleted     bool
}

// seedArticles creates n articles in the table of model, about one in six
// soft-deleted, and indexes them in mode.
func seedArticles(t testing.TB, db *gorm.DB, model any, mode string, n int, rng *rand.Rand) (*outbox.Spec, []article) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.AutoMigrate(model))
	stmt := &gorm.Statement{DB: db}
	require.NoError(t, stmt.Parse(model))
	table := stmt.Schema.Table
	spec := ftsSpec(table, "id", outbox.KeyInteger, mode, "")
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, fixture.Register(ctx, sqlDB, spec))
	tx, err := sqlDB.Begin()
	require.NoError(t, err)
	var arts []article
	for i := 1; i <= n; i++ {
		a := article{id: int64(i), title: words(rng, 2+rng.IntN(4)), body: words(rng, 5+rng.IntN(30)), deleted: rng.IntN(6) == 0}
		arts = append(arts, a)
		var del any
		if a.deleted {
			del = time.Unix(1700000000, 0).UTC()
		}
		_, err := tx.Exec(fmt.Sprintf(`INSERT INTO %s (id, title, body, views, deleted_at) VALUES (?, ?, ?, ?, ?)`, table), a.id, a.title, a.body, i, del)
		require.NoError(t, err)
		require.NoError(t, fixture.PutFTS(ctx, tx, spec, a.id, []any{a.title, a.body}, a.deleted))
	}
	require.NoError(t, tx.Commit())
	return spec, arts
}

type rawHit struct {
	id   int64
	rank float64
}

// rawSearch is the reference: hand-written FTS5 SQL.
func rawSearch(t *testing.T, db *sql.DB, spec *outbox.Spec, expr, weights string, includeDeleted bool, limit, offset int) []rawHit {
	t.Helper()
	f := spec.FTS.Table
	where := ""
	if !includeDeleted {
		if spec.FTS.Mode == outbox.ModeExternal {
			where = " AND deleted_at IS NULL"
		} else {
			where = " AND deleted = 0"
		}
	}
	rows, err := db.Query(fmt.Sprintf(`SELECT rowid, bm25(%[1]s%[2]s) FROM %[1]s WHERE %[1]s MATCH ?%[3]s ORDER BY bm25(%[1]s%[2]s), rowid LIMIT ? OFFSET ?`, f, weights, where), expr, limit, offset)
	require.NoError(t, err)
	defer rows.Close()
	var out []rawHit
	for rows.Next() {
		var h rawHit
		require.NoError(t, rows.Scan(&h.id, &h.rank))
		out = append(out, h)
	}
	require.NoError(t, rows.Err())
	return out
}

func hitsOf[T interface{ key() int64 }](hs []ftssink.Hit[T]) []rawHit {
	var out []rawHit
	for _, h := range hs {
		out = append(out, rawHit{h.Model.key(), h.Rank})
	}
	return out
}

func (a ArticleBase) key() int64 { return a.ID }

// queries pairs builder queries with the expression a person would write by
// hand for the same search.
var queries = []struct {
	q   ftssink.Query
	raw string
}{
	{ftssink.Term("alpha"), `alpha`},
	{ftssink.Term("alpha beta"), `alpha AND beta`},
	{ftssink.Phrase("alpha beta"), `"alpha beta"`},
	{ftssink.Prefix("dat"), `dat*`},
	{ftssink.Prefix("big dat"), `"big" + dat*`},
	{ftssink.Or(ftssink.Term("gamma"), ftssink.Term("omega")), `gamma OR omega`},
	{ftssink.And(ftssink.Term("alpha"), ftssink.Not(ftssink.Term("beta"))), `alpha NOT beta`},
	{ftssink.And(ftssink.Or(ftssink.Term("pi"), ftssink.Term("rho")), ftssink.Not(ftssink.Term("alpha")), ftssink.Not(ftssink.Term("beta"))), `(pi OR rho) NOT alpha NOT beta`},
	{ftssink.Column("title", ftssink.Term("alpha")), `title : alpha`},
	{ftssink.Column("TITLE", ftssink.Or(ftssink.Term("alpha"), ftssink.Phrase("beta gamma"))), `title : (alpha OR "beta gamma")`},
	{ftssink.Term("not"), `"not"`},
	{ftssink.Term("NEAR and"), `"near" AND "and"`},
	{ftssink.Term("Alpha, (beta)!"), `alpha AND beta`},
	{ftssink.Raw(`NEAR(alpha beta, 3)`), `NEAR(alpha beta, 3)`},
	{ftssink.Raw(`{title body} : delta`), `delta`},
}

func TestSearchMatchesRawFTS5(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	extSpec, _ := seedArticles(t, db, &extArticle{}, outbox.ModeExternal, 300, rng)
	inSpec, _ := seedArticles(t, db, &inArticle{}, outbox.ModeInTable, 300, rng)
	clSpec, _ := seedArticles(t, db, &clArticle{}, outbox.ModeContentless, 300, rng)

	check := func(t *testing.T, spec *outbox.Spec, got []rawHit, raw, weights string, limit int) {
		t.Helper()
		want := rawSearch(t, sqlDB, spec, raw, weights, false, limit, 0)
		require.Equal(t, want, got, "raw %q", raw)
	}
	nonEmpty := 0
	for i, c := range queries {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, err := ftssink.Search[extArticle](ctx, db, c.q, ftssink.WithLimit(25))
			require.NoError(t, err)
			check(t, extSpec, hitsOf(got), c.raw, "", 25)
			if len(got) > 0 {
				nonEmpty++
			}
			for _, h := range got {
				require.False(t, h.Model.DeletedAt.Valid)
				require.Nil(t, h.Snippets)
				require.Nil(t, h.Highlights)
			}

			gotIn, err := ftssink.Search[inArticle](ctx, db, c.q, ftssink.WithLimit(25), ftssink.WithRanking(10, 1))
			require.NoError(t, err)
			check(t, inSpec, hitsOf(gotIn), c.raw, ", 10, 1", 25)

			gotCl, err := ftssink.Search[clArticle](ctx, db, c.q, ftssink.WithRanking(0.5))
			require.NoError(t, err)
			check(t, clSpec, hitsOf(gotCl), c.raw, ", 0.5", ftssink.DefaultLimit)
		})
	}
	require.Greater(t, nonEmpty, len(queries)/2, "the corpus must make most queries match")
}

func TestSearchPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	spec, _ := seedArticles(t, db, &inArticle{}, outbox.ModeInTable, 200, rng)
	q := ftssink.Or(ftssink.Term("alpha"), ftssink.Term("beta"))
	all := rawSearch(t, sqlDB, spec, "alpha OR beta", "", false, 1000, 0)
	require.Greater(t, len(all), 30)
	var paged []rawHit
	for off := 0; ; off += 7 {
		page, err := ftssink.Search[inArticle](ctx, db, q, ftssink.WithLimit(7), ftssink.WithOffset(off))
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 7)
		if len(page) == 0 {
			break
		}
		paged = append(paged, hitsOf(page)...)
	}
	require.Equal(t, all, paged)
	def, err := ftssink.Search[inArticle](ctx, db, q)
	require.NoError(t, err)
	require.Len(t, def, ftssink.DefaultLimit)
}

func TestSearchSoftDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(5, 6))
	extSpec, _ := seedArticles(t, db, &extArticle{}, outbox.ModeExternal, 200, rng)
	clSpec, _ := seedArticles(t, db, &clArticle{}, outbox.ModeContentless, 200, rng)
	q := ftssink.Term("alpha")

	for _, c := range []struct {
		spec   *outbox.Spec
		search func(...ftssink.Option) ([]rawHit, []bool, error)
	}{
		{extSpec, func(o ...ftssink.Option) ([]rawHit, []bool, error) {
			hs, err := ftssink.Search[extArticle](ctx, db, q, o...)
			var del []bool
			for _, h := range hs {
				del = append(del, h.Model.DeletedAt.Valid)
			}
			return hitsOf(hs), del, err
		}},
		{clSpec, func(o ...ftssink.Option) ([]rawHit, []bool, error) {
			hs, err := ftssink.Search[clArticle](ctx, db, q, o...)
			var del []bool
			for _, h := range hs {
				del = append(del, h.Model.DeletedAt.Valid)
			}
			return hitsOf(hs), del, err
		}},
	} {
		got, del, err := c.search(ftssink.WithLimit(500))
		require.NoError(t, err)
		require.Equal(t, rawSearch(t, sqlDB, c.spec, "alpha", "", false, 500, 0), got)
		require.NotContains(t, del, true)

		all, del, err := c.search(ftssink.WithLimit(500), ftssink.IncludeDeleted())
		require.NoError(t, err)
		require.Equal(t, rawSearch(t, sqlDB, c.spec, "alpha", "", true, 500, 0), all)
		require.Contains(t, del, true, "soft-deleted rows come back with IncludeDeleted")
		require.Greater(t, len(all), len(got))
	}

	// external content reads the soft-delete column live from the source
	first, err := ftssink.Search[extArticle](ctx, db, q, ftssink.WithLimit(1))
	require.NoError(t, err)
	require.Len(t, first, 1)
	require.NoError(t, db.Delete(&extArticle{ArticleBase{ID: first[0].Model.ID}}).Error)
	again, err := ftssink.Search[extArticle](ctx, db, q, ftssink.WithLimit(500))
	require.NoError(t, err)
	for _, h := range again {
		require.NotEqual(t, first[0].Model.ID, h.Model.ID)
	}
}

func TestSearchSnippetsAndHighlights(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 8))
	extSpec, _ := seedArticles(t, db, &extArticle{}, outbox.ModeExternal, 100, rng)
	inSpec, _ := seedArticles(t, db, &inArticle{}, outbox.ModeInTable, 100, rng)
	seedArticles(t, db, &clArticle{}, outbox.ModeContentless, 10, rng)
	q := ftssink.Or(ftssink.Term("alpha"), ftssink.Term("omega"))
	opts := []ftssink.Option{
		ftssink.WithSnippet("body", "[", "]", "…", 6),
		ftssink.WithHighlight("Title", "<b>", "</b>"),
		ftssink.WithHighlight("body", "*", "*"),
		ftssink.WithRanking(2, 1),
	}
	for _, c := range []struct {
		spec *outbox.Spec
		hits func() ([]ftssink.Hit[ArticleBase], error)
	}{
		{extSpec, func() ([]ftssink.Hit[ArticleBase], error) {
			hs, err := ftssink.Search[extArticle](ctx, db, q, opts...)
			return baseHits(hs, func(a extArticle) ArticleBase { return a.ArticleBase }), err
		}},
		{inSpec, func() ([]ftssink.Hit[ArticleBase], error) {
			hs, err := ftssink.Search[inArticle](ctx, db, q, opts...)
			return baseHits(hs, func(a inArticle) ArticleBase { return a.ArticleBase }), err
		}},
	} {
		hits, err := c.hits()
		require.NoError(t, err)
		require.Len(t, hits, ftssink.DefaultLimit)
		f := c.spec.FTS.Table
		rows, err := sqlDB.Query(fmt.Sprintf(`SELECT rowid, bm25(%[1]s, 2, 1), snippet(%[1]s, 1, '[', ']', '…', 6), highlight(%[1]s, 0, '<b>', '</b>'), highlight(%[1]s, 1, '*', '*')
			FROM %[1]s WHERE %[1]s MATCH 'alpha OR omega' AND deleted_at IS NULL ORDER BY 2, rowid LIMIT 10`, f))
		if c.spec.FTS.Mode != outbox.ModeExternal {
			rows, err = sqlDB.Query(fmt.Sprintf(`SELECT rowid, bm25(%[1]s, 2, 1), snippet(%[1]s, 1, '[', ']', '…', 6), highlight(%[1]s, 0, '<b>', '</b>'), highlight(%[1]s, 1, '*', '*')
			FROM %[1]s WHERE %[1]s MATCH 'alpha OR omega' AND deleted = 0 ORDER BY 2, rowid LIMIT 10`, f))
		}
		require.NoError(t, err)
		i := 0
		for rows.Next() {
			var id int64
			var rank float64
			var snip, hlTitle, hlBody string
			require.NoError(t, rows.Scan(&id, &rank, &snip, &hlTitle, &hlBody))
			h := hits[i]
			require.Equal(t, id, h.Model.ID)
			require.Equal(t, rank, h.Rank)
			require.Equal(t, map[string]string{"body": snip}, h.Snippets)
			require.Equal(t, map[string]string{"title": hlTitle, "body": hlBody}, h.Highlights)
			require.Equal(t, strings.NewReplacer("<b>", "", "</b>", "").Replace(hlTitle), h.Model.Title)
			i++
		}
		require.NoError(t, rows.Err())
		require.Equal(t, len(hits), i)
		require.True(t, strings.Contains(hits[0].Highlights["body"]+hits[0].Highlights["title"], "alpha") ||
			strings.Contains(hits[0].Highlights["body"]+hits[0].Highlights["title"], "omega"))
	}
	_, err = ftssink.Search[clArticle](ctx, db, q, ftssink.WithSnippet("body", "[", "]", "…", 6))
	require.ErrorIs(t, err, ftssink.ErrNoContent)
	_, err = ftssink.Search[clArticle](ctx, db, q, ftssink.WithHighlight("body", "[", "]"))
	require.ErrorIs(t, err, ftssink.ErrNoContent)
}

func baseHits[T any](hs []ftssink.Hit[T], f func(T) ArticleBase) []ftssink.Hit[ArticleBase] {
	out := make([]ftssink.Hit[ArticleBase], len(hs))
	for i, h := range hs {
		out[i] = ftssink.Hit[ArticleBase]{Model: f(h.Model), Rank: h.Rank, Snippets: h.Snippets, Highlights: h.Highlights}
	}
	return out
}

func TestSearchTextKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	for _, mode := range []string{outbox.ModeInTable, outbox.ModeContentless} {
		t.Run(mode, func(t *testing.T) {
			table := "notes_" + mode
			require.NoError(t, db.Table(table).AutoMigrate(&note{}))
			spec := ftsSpec(table, "slug", outbox.KeyText, mode, "")
			require.NoError(t, fixture.Register(ctx, sqlDB, spec))
			// another table's keys take rowids in oi_keymap first, so that
			// rowids and keys of this table do not line up by chance
			other := ftsSpec("other_"+mode, "slug", outbox.KeyText, mode, "")
			require.NoError(t, db.Table("other_"+mode).AutoMigrate(&note{}))
			require.NoError(t, fixture.Register(ctx, sqlDB, other))
			for _, s := range []string{"x", "y", "z"} {
				require.NoError(t, fixture.PutFTS(ctx, sqlDB, other, s, []any{"alpha", "alpha"}, false))
			}
			docs := map[string][2]string{
				"007":      {"alpha alpha alpha", "beta"},
				"7":        {"alpha", "gamma gamma"},
				"the-slug": {"gamma", "alpha beta"},
				"gone":     {"alpha alpha", "alpha"},
				"ünï":      {"delta", "alpha"},
			}
			for slug, d := range docs {
				var del any
				if slug == "gone" {
					del = time.Now()
				}
				require.NoError(t, db.Exec(fmt.Sprintf(`INSERT INTO %s (slug, title, body, deleted_at) VALUES (?, ?, ?, ?)`, table), slug, d[0], d[1], del).Error)
				require.NoError(t, fixture.PutFTS(ctx, sqlDB, spec, slug, []any{d[0], d[1]}, slug == "gone"))
			}
			hits, err := ftssink.Search[note](ctx, db.Table(table), ftssink.Term("alpha"), ftssink.WithRanking(5, 1))
			require.NoError(t, err)
			rows, err := sqlDB.Query(fmt.Sprintf(`SELECT km.key FROM %[1]s_fts JOIN oi_keymap km ON km.rid = %[1]s_fts.rowid
				WHERE %[1]s_fts MATCH 'alpha' AND deleted = 0 ORDER BY bm25(%[1]s_fts, 5, 1), %[1]s_fts.rowid`, table))
			require.NoError(t, err)
			var want []string
			for rows.Next() {
				var k string
				require.NoError(t, rows.Scan(&k))
				want = append(want, k)
			}
			require.NoError(t, rows.Err())
			var got []string
			for _, h := range hits {
				got = append(got, h.Model.Slug)
				require.Equal(t, docs[h.Model.Slug][0], h.Model.Title)
			}
			require.Equal(t, want, got)
			require.Equal(t, []string{"007", "ünï", "7", "the-slug"}[:1], got[:1])
			require.NotContains(t, got, "gone")
			require.Len(t, got, 4)

			all, err := ftssink.Matches(ctx, sqlDB, spec, ftssink.Term("alpha"), ftssink.IncludeDeleted())
			require.NoError(t, err)
			require.Len(t, all, 5)
			for _, m := range all {
				require.IsType(t, "", m.Key)
			}
		})
	}
}

func TestSearchLiteralStrings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, db.AutoMigrate(&inArticle{}))
	spec := ftsSpec("in_articles", "id", outbox.KeyInteger, outbox.ModeInTable, "")
	spec.FTS.Tokenize = "unicode61"
	require.NoError(t, fixture.Register(ctx, sqlDB, spec))
	docs := []string{
		`NOT this AND that OR near`,
		`e-mail: "quoted" text*`,
		`col:value ^start (paren) NEAR/2`,
		`Ünïcödé straße 東京`,
		`nothing special here`,
	}
	for i, d := range docs {
		require.NoError(t, db.Create(&inArticle{ArticleBase{ID: int64(i + 1), Title: d}}).Error)
		require.NoError(t, fixture.PutFTS(ctx, sqlDB, spec, int64(i+1), []any{d, ""}, false))
	}
	find := func(q ftssink.Query) []int64 {
		t.Helper()
		hs, err := ftssink.Search[inArticle](ctx, db, q, ftssink.WithLimit(100))
		require.NoError(t, err, "query %s", q)
		var out []int64
		for _, h := range hs {
			out = append(out, h.Model.ID)
		}
		return out
	}
	require.Equal(t, []int64{1}, find(ftssink.Term("NOT")))
	require.Equal(t, []int64{1}, find(ftssink.Term("and OR")))
	require.Equal(t, []int64{1}, find(ftssink.Phrase("this AND that")))
	require.Equal(t, []int64{2}, find(ftssink.Term("e-mail")))
	require.Equal(t, []int64{2}, find(ftssink.Term(`"quoted"`)))
	require.Equal(t, []int64{2}, find(ftssink.Term(`text*`)))
	require.Equal(t, []int64{3}, find(ftssink.Term("col:value")))
	require.Equal(t, []int64{3}, find(ftssink.Term("^start")))
	require.Equal(t, []int64{3}, find(ftssink.Term("(paren)")))
	require.Equal(t, []int64{3}, find(ftssink.Phrase("NEAR/2")))
	require.Equal(t, []int64{4}, find(ftssink.Term("ünïcödé")))
	require.Equal(t, []int64{4}, find(ftssink.Term("東京")))
	require.Equal(t, []int64{4}, find(ftssink.Prefix("STRA")))
	require.ElementsMatch(t, []int64{1, 3, 5}, find(ftssink.Prefix("n")))
	// strings without tokens match nothing; inside Or they are ignored,
	// inside Not they exclude nothing
	for _, s := range []string{"", "   ", "!!!", `"`, `""`, "*", "()", ":", "^"} {
		require.Empty(t, find(ftssink.Term(s)), "%q", s)
		require.Empty(t, find(ftssink.Phrase(s)), "%q", s)
		require.Empty(t, find(ftssink.Prefix(s)), "%q", s)
		require.Empty(t, find(ftssink.And(ftssink.Term("nothing"), ftssink.Term(s))), "%q", s)
		require.Equal(t, []int64{5}, find(ftssink.Or(ftssink.Term("nothing"), ftssink.Phrase(s))), "%q", s)
		require.Equal(t, []int64{5}, find(ftssink.And(ftssink.Term("nothing"), ftssink.Not(ftssink.Prefix(s)))), "%q", s)
	}
}

func TestSearchDetailColumn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, db.AutoMigrate(&inArticle{}))
	spec := ftsSpec("in_articles", "id", outbox.KeyInteger, outbox.ModeInTable, "column")
	require.NoError(t, fixture.Register(ctx, sqlDB, spec))
	require.NoError(t, db.Create(&inArticle{ArticleBase{ID: 1, Title: "e-mail sent", Body: "x"}}).Error)
	require.NoError(t, fixture.PutFTS(ctx, sqlDB, spec, int64(1), []any{"e-mail sent", "x"}, false))
	hs, err := ftssink.Search[inArticle](ctx, db, ftssink.Term("mail-e"))
	require.NoError(t, err, "Term splits words the table cannot match as phrases")
	require.Len(t, hs, 1)
	hs, err = ftssink.Search[inArticle](ctx, db, ftssink.Column("title", ftssink.Term("sent")))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	_, err = ftssink.Search[inArticle](ctx, db, ftssink.Phrase("e mail"))
	require.ErrorIs(t, err, ftssink.ErrQuerySyntax)
	require.ErrorContains(t, err, "phrase")
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(9, 10))
	seedArticles(t, db, &inArticle{}, outbox.ModeInTable, 20, rng)
	q := ftssink.Term("alpha")

	for _, raw := range []string{`alpha)`, `"unterminated`, `nosuch : alpha`, `AND`, ``, `NEAR(alpha`, `alpha NOT`} {
		_, err := ftssink.Search[inArticle](ctx, db, ftssink.Raw(raw))
		require.ErrorIs(t, err, ftssink.ErrQuerySyntax, "%q", raw)
		require.ErrorContains(t, err, "in_articles_fts")
		_, err = ftssink.Search[inArticle](ctx, db, ftssink.And(q, ftssink.Raw(raw)))
		require.ErrorIs(t, err, ftssink.ErrQuerySyntax, "%q", raw)
	}
	for _, bad := range []ftssink.Query{
		nil,
		ftssink.Not(q),
		ftssink.And(),
		ftssink.Or(q, ftssink.Not(q)),
		ftssink.Column("nosuch", q),
		ftssink.And(q, ftssink.Column("views", q)),
	} {
		_, err := ftssink.Search[inArticle](ctx, db, bad)
		require.ErrorIs(t, err, ftssink.ErrInvalidQuery, "%v", bad)
	}
	_, err = ftssink.Search[inArticle](ctx, db, ftssink.Column("nosuch", q))
	require.ErrorContains(t, err, `"nosuch"`)
	require.ErrorContains(t, err, "title, body")

	for name, opt := range map[string]ftssink.Option{
		"limit 0":          ftssink.WithLimit(0),
		"limit -1":         ftssink.WithLimit(-1),
		"offset -1":        ftssink.WithOffset(-1),
		"three weights":    ftssink.WithRanking(1, 2, 3),
		"NaN weight":       ftssink.WithRanking(1, nan()),
		"snippet column":   ftssink.WithSnippet("views", "", "", "", 5),
		"snippet tokens 0": ftssink.WithSnippet("body", "", "", "", 0),
		"snippet 65":       ftssink.WithSnippet("body", "", "", "", 65),
		"highlight column": ftssink.WithHighlight("nosuch", "", ""),
	} {
		_, err := ftssink.Search[inArticle](ctx, db, q, opt)
		require.ErrorIs(t, err, ftssink.ErrInvalidOption, name)
	}

	// not migrated, and migrated without an fts5 sidecar
	_, err = ftssink.Search[note](ctx, db, q)
	require.ErrorIs(t, err, outbox.ErrNotRegistered)
	require.ErrorContains(t, err, "notes")
	require.NoError(t, db.AutoMigrate(&note{}))
	require.NoError(t, fixture.Register(ctx, sqlDB, &outbox.Spec{
		Version: outbox.SpecVersion, Source: "notes", Key: "slug", KeyType: outbox.KeyText,
		Vec: &outbox.VecSpec{Table: "notes_vec", Column: "embedding", Dim: 2, Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary},
	}))
	_, err = ftssink.Search[note](ctx, db, q)
	require.ErrorIs(t, err, ftssink.ErrNoFTS)
	_, err = ftssink.Matches(ctx, sqlDB, nil, q)
	require.ErrorIs(t, err, ftssink.ErrNoFTS)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = ftssink.Search[inArticle](cctx, db, q)
	require.ErrorIs(t, err, context.Canceled)
}

func nan() float64 {
	var zero float64
	return zero / zero
}
