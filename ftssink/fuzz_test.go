package ftssink_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/tests/fixture"
)

// fuzzDB is a database with two small FTS5 tables: detail=full (porter) and
// detail=column (unicode61), so that every query the fuzzers build runs as a
// real MATCH.
func fuzzDB(f *testing.F) (*sql.DB, *outbox.Spec, *outbox.Spec) {
	ctx := context.Background()
	db := testdb.New(f)
	sqlDB, err := db.DB()
	if err != nil {
		f.Fatal(err)
	}
	full := ftsSpec("fz_full", "id", outbox.KeyInteger, outbox.ModeInTable, "")
	col := ftsSpec("fz_col", "id", outbox.KeyInteger, outbox.ModeContentless, "column")
	col.FTS.Tokenize = "unicode61"
	docs := [][2]string{
		{`NOT this AND that OR near`, `e-mail: "quoted" text*`},
		{`col:value ^start (paren) NEAR/2`, `Ünïcödé straße 東京`},
		{`big data`, `database systems`},
	}
	for _, spec := range []*outbox.Spec{full, col} {
		if _, err := sqlDB.Exec(`CREATE TABLE ` + spec.Source + ` (id INTEGER PRIMARY KEY, title TEXT, body TEXT, deleted_at DATETIME)`); err != nil {
			f.Fatal(err)
		}
		if err := fixture.Register(ctx, sqlDB, spec); err != nil {
			f.Fatal(err)
		}
		for i, d := range docs {
			if err := fixture.PutFTS(ctx, sqlDB, spec, int64(i+1), []any{d[0], d[1]}, false); err != nil {
				f.Fatal(err)
			}
		}
	}
	return sqlDB, full, col
}

// shapes is the number of query shapes fuzzQuery builds.
const shapes = 13

// fuzzQuery combines three user strings into one of the builder's shapes.
func fuzzQuery(shape uint8, a, b, c string) ftssink.Query {
	switch shape % shapes {
	case 0:
		return ftssink.Term(a)
	case 1:
		return ftssink.Phrase(a)
	case 2:
		return ftssink.Prefix(a)
	case 3:
		return ftssink.And(ftssink.Term(a), ftssink.Phrase(b), ftssink.Prefix(c))
	case 4:
		return ftssink.Or(ftssink.Term(a), ftssink.Prefix(b), ftssink.Phrase(c))
	case 5:
		return ftssink.And(ftssink.Or(ftssink.Term(a), ftssink.Phrase(b)), ftssink.Not(ftssink.Prefix(c)))
	case 6:
		return ftssink.Or(ftssink.Column("title", ftssink.And(ftssink.Term(a), ftssink.Not(ftssink.Term(b)))), ftssink.Prefix(c))
	case 7:
		return ftssink.And(ftssink.Column("body", ftssink.Prefix(a)), ftssink.Not(ftssink.Or(ftssink.Term(b), ftssink.Column("title", ftssink.Phrase(c)))))
	case 8:
		return ftssink.And(ftssink.Not(ftssink.Term(a)), ftssink.Column("TITLE", ftssink.Term(b)), ftssink.Not(ftssink.And(ftssink.Prefix(c), ftssink.Term(a))))
	case 9:
		return ftssink.Column("body", ftssink.Or(ftssink.Column("title", ftssink.Term(a)), ftssink.Prefix(b), ftssink.And(ftssink.Term(c), ftssink.Not(ftssink.Phrase(a)))))
	case 10:
		return ftssink.Near(len(c)%12, a, b)
	case 11:
		return ftssink.Column("title", ftssink.Near(len(a)%4, a, b, c))
	default:
		return ftssink.And(ftssink.Or(ftssink.Near(0, a), ftssink.Near(3, b, c)), ftssink.Not(ftssink.Near(1, c, a)))
	}
}

// onlyWords reports whether shape uses only Term and Prefix, the
// constructors that work on detail=column tables for any input.
func onlyWords(shape uint8) bool {
	switch shape % shapes {
	case 0, 2:
		return true
	}
	return false
}

// FuzzQueryBuilder checks that no user string given to Term, Phrase, Prefix
// or Near, in any combination with And, Or, Not and Column, produces an FTS5
// error in a real MATCH.
func FuzzQueryBuilder(f *testing.F) {
	for _, s := range [][3]string{
		{"alpha", "beta", "gamma"},
		{"", "", ""},
		{`"`, `""`, `"""`},
		{"NOT", "AND", "OR"},
		{"NEAR(a b, 3)", "NEAR/2", "near"},
		{"title:x", "^start", "col : (a)"},
		{"a*", "*", "* *"},
		{"(", ")", "()"},
		{"{title body}", "-x", "+y"},
		{"a\x00b", "\x00", "\"\x00\""},
		{"Ünïcödé", "東京", "straße"},
		{"\xff\xfe", "\xc3", "a\xe2\x82"},
		{"e-mail", "big data", "data base"},
		{"   ", "\t\n", "!!!"},
	} {
		for shape := uint8(0); shape < shapes; shape++ {
			f.Add(shape, s[0], s[1], s[2])
		}
	}
	db, full, col := fuzzDB(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, shape uint8, a, b, c string) {
		q := fuzzQuery(shape, a, b, c)
		if _, err := ftssink.Matches(ctx, db, full, q, ftssink.WithSnippet("body", "[", "]", "…", 8)); err != nil {
			t.Fatalf("query %s (shape %d, %q %q %q): %v", q, shape%shapes, a, b, c, err)
		}
		if onlyWords(shape) {
			if _, err := ftssink.Matches(ctx, db, col, q); err != nil {
				t.Fatalf("detail=column: query %s (shape %d, %q): %v", q, shape%shapes, a, err)
			}
		}
	})
}

// FuzzRaw checks that a Raw expression either runs or fails with an error
// wrapping ErrQuerySyntax: never a panic, never another kind of error.
func FuzzRaw(f *testing.F) {
	for _, s := range []string{
		`alpha`, `alpha AND beta`, `"big data"`, `dat*`, `title : alpha`, `{title body} : alpha`,
		`NEAR(alpha beta, 3)`, `alpha NOT beta`, `^big`, `(alpha OR beta) NOT gamma`,
		``, `)`, `(`, `"`, `AND`, `NOT alpha`, `nosuch : x`, `a:b:c`, `NEAR(`, `*`, `+`, `-title : x`,
		"a\x00b", "\xff", `((((((((((((((((((((a))))))))))))))))))))`,
	} {
		f.Add(s)
	}
	db, full, _ := fuzzDB(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, expr string) {
		_, err := ftssink.Matches(ctx, db, full, ftssink.Raw(expr))
		if err != nil && !errors.Is(err, ftssink.ErrQuerySyntax) {
			t.Fatalf("Raw(%q): error without ErrQuerySyntax: %v", expr, err)
		}
	})
}
