package sqlfrag_test

import (
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/sqlfrag"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	ok := []struct {
		k     sqlfrag.Kind
		s     string
		nargs int
	}{
		{sqlfrag.Expr, "cat = ?", 1},
		{sqlfrag.Expr, "a.x IN (SELECT y FROM z WHERE w = ?) AND b LIKE '%;--%'", 1},
		{sqlfrag.Expr, `"order" = 'it''s' AND [limit] > 0 AND ` + "`from`" + ` IS NOT DISTINCT FROM ?`, 1},
		{sqlfrag.Expr, "x -> '$.a' = 1 AND y - 1 > 0 AND z / 2 < 1", 0},
		{sqlfrag.Columns, "authors.name AS author_name, count(*) OVER () AS n", 0},
		{sqlfrag.Columns, "(SELECT max(y) FROM z) AS m", 0},
		{sqlfrag.Join, "JOIN authors ON authors.id = articles.author_id", 0},
		{sqlfrag.Join, "left outer join a ON a.id = b.a_id AND a.k = ? INNER JOIN c USING (id)", 1},
		{sqlfrag.Join, "CROSS JOIN (SELECT 1 UNION SELECT 2) AS u", 0},
		{sqlfrag.Order, "year DESC NULLS LAST, abs(x - ?)", 1},
	}
	for _, c := range ok {
		require.NoError(t, sqlfrag.Check(c.k, c.s, c.nargs), c.s)
	}
	bad := []struct {
		k     sqlfrag.Kind
		s     string
		nargs int
		want  string
	}{
		{sqlfrag.Expr, "", 0, "empty condition"},
		{sqlfrag.Expr, " \t", 0, "empty"},
		{sqlfrag.Expr, "1; DROP TABLE t", 0, "';'"},
		{sqlfrag.Expr, "1 -- x", 0, "comment"},
		{sqlfrag.Expr, "1 /* x */", 0, "comment"},
		{sqlfrag.Expr, "'abc", 0, "unterminated '"},
		{sqlfrag.Expr, `"abc`, 0, `unterminated "`},
		{sqlfrag.Expr, "[abc", 0, "unterminated ["},
		{sqlfrag.Expr, "(1", 0, "unclosed"},
		{sqlfrag.Expr, "1) OR (1", 0, "unbalanced"},
		{sqlfrag.Expr, "x = ?", 0, "1 ? placeholders but 0 arguments"},
		{sqlfrag.Expr, "x = ?2", 1, "numbered"},
		{sqlfrag.Expr, "x = :x", 1, "named"},
		{sqlfrag.Expr, "x = @x", 1, "named"},
		{sqlfrag.Expr, "x = $x", 1, "named"},
		{sqlfrag.Expr, "1 UNION SELECT 1", 0, "UNION"},
		{sqlfrag.Expr, "1 ORDER BY 1", 0, "ORDER"},
		{sqlfrag.Expr, "1 JOIN t", 0, "JOIN"},
		{sqlfrag.Expr, "a\x00b", 0, "NUL"},
		{sqlfrag.Columns, "x FROM t", 0, "FROM"},
		{sqlfrag.Columns, "?", 1, "takes no arguments"},
		{sqlfrag.Join, "", 0, "empty join clause"},
		{sqlfrag.Join, "authors ON 1", 0, "must start with JOIN"},
		{sqlfrag.Join, "(JOIN x)", 0, "must start with JOIN"},
		{sqlfrag.Join, "RIGHT JOIN a ON 1", 0, "RIGHT"},
		{sqlfrag.Join, "JOIN a ON 1 FULL JOIN b ON 1", 0, "FULL"},
		{sqlfrag.Join, "NATURAL JOIN a", 0, "NATURAL"},
		{sqlfrag.Join, "JOIN a ON 1 WHERE 1", 0, "WHERE"},
		{sqlfrag.Order, "x LIMIT 1", 0, "LIMIT"},
		{sqlfrag.Order, "ORDER BY x", 0, "ORDER"},
	}
	for _, c := range bad {
		err := sqlfrag.Check(c.k, c.s, c.nargs)
		require.Error(t, err, c.s)
		require.ErrorContains(t, err, c.want, c.s)
	}
}

// FuzzCheck checks that a fragment Check accepts as a condition never
// escapes its place: pasted between fixed text, SQLite either compiles the
// statement as one statement or reports an ordinary error, and the
// statement's own trailing clause is never commented out or cut off.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"x = ?", "1; DROP TABLE t", "1 -- x", "'a''b'", `"x"`, "[y]", "(1", "1)", "x IN (SELECT 1 UNION SELECT 2)", "?1", ":a", "a IS DISTINCT FROM b", "/*", "'", "\x00"} {
		f.Add(s)
	}
	db := testdb.New(f)
	sqlDB, err := db.DB()
	if err != nil {
		f.Fatal(err)
	}
	if _, err := sqlDB.Exec(`CREATE TABLE t (x, y)`); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := strings.Count(s, "?")
		if sqlfrag.Check(sqlfrag.Expr, s, n) != nil {
			return
		}
		args := make([]any, n)
		// the sentinel column proves the end of the statement survived
		rows, err := sqlDB.Query(`SELECT 'end' FROM t WHERE (`+s+`) AND 0 UNION ALL SELECT 'end'`, args...)
		if err != nil {
			return // an ordinary SQL error in the fragment
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var v string
			require.NoError(t, rows.Scan(&v))
			got = append(got, v)
		}
		if rows.Err() != nil {
			return
		}
		require.Equal(t, []string{"end"}, got, "fragment %q", s)
	})
}
