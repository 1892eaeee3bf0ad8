package ftssink_test

import (
	"context"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/tests/fixture"
	"github.com/stretchr/testify/require"
)

func TestNearString(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		q    ftssink.Query
		want string
	}{
		// the seed's TestBuild_Near, with our explicit distance
		{ftssink.Near(0, "foo", "bar"), `NEAR("foo" "bar", 0)`},
		{ftssink.Near(5, "foo", "bar"), `NEAR("foo" "bar", 5)`},
		{ftssink.Near(3, "x", "y", "z"), `NEAR("x" "y" "z", 3)`},
		{ftssink.Near(10, "a"), `NEAR("a", 10)`},
		// escaped like Term: quotes doubled, operators inert, NUL a blank
		{ftssink.Near(2, `say "hi"`, "NEAR(x", "a\x00b", ""), `NEAR("say ""hi""" "NEAR(x" "a b" "", 2)`},
		{ftssink.Column("title", ftssink.Near(1, "a", "b")), `"title" : (NEAR("a" "b", 1))`},
		{ftssink.And(ftssink.Near(1, "a", "b"), ftssink.Not(ftssink.Term("c"))), `(NEAR("a" "b", 1)) NOT ("c")`},
	} {
		require.Equal(t, c.want, c.q.String())
	}
	for _, q := range []ftssink.Query{
		ftssink.Near(3),
		ftssink.Near(-1, "a", "b"),
		ftssink.Near(ftssink.MaxNearDistance+1, "a", "b"),
	} {
		require.Contains(t, q.String(), "<invalid query: ftssink: invalid query")
	}
}

func TestNearSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	full := ftsSpec("near_docs", "id", outbox.KeyInteger, outbox.ModeInTable, "")
	col := ftsSpec("near_cols", "id", outbox.KeyInteger, outbox.ModeInTable, "column")
	docs := map[int64]string{
		1: "quick brown fox jumps",                 // brown, fox adjacent
		2: "brown dogs chase the red fox",          // 3 tokens between
		3: "fox is never brown",                    // reversed, 1 between
		4: "brown one two three four five six fox", // 6 between
		5: "a fox only",
		6: `big "data" systems`,
	}
	for _, spec := range []*outbox.Spec{full, col} {
		_, err := sqlDB.Exec(`CREATE TABLE ` + spec.Source + ` (id INTEGER PRIMARY KEY, title TEXT, body TEXT, deleted_at DATETIME)`)
		require.NoError(t, err)
		require.NoError(t, fixture.Register(ctx, sqlDB, spec))
		for id, body := range docs {
			_, err := sqlDB.Exec(`INSERT INTO `+spec.Source+` (id, title, body) VALUES (?, '', ?)`, id, body)
			require.NoError(t, err)
			require.NoError(t, fixture.PutFTS(ctx, sqlDB, spec, id, []any{"", body}, false))
		}
	}
	keys := func(q ftssink.Query) []int64 {
		ms, err := ftssink.Matches(ctx, sqlDB, full, q, ftssink.WithLimit(100))
		require.NoError(t, err)
		var out []int64
		for _, m := range ms {
			out = append(out, m.Key.(int64))
		}
		return out
	}
	require.ElementsMatch(t, []int64{1}, keys(ftssink.Near(0, "brown", "fox")))
	require.ElementsMatch(t, []int64{1}, keys(ftssink.Near(1, "brown", "fox")))
	require.ElementsMatch(t, []int64{1, 3}, keys(ftssink.Near(2, "brown", "fox")))
	require.ElementsMatch(t, []int64{1, 3}, keys(ftssink.Near(3, "fox", "brown")))
	require.ElementsMatch(t, []int64{1, 2, 3}, keys(ftssink.Near(4, "fox", "brown")))
	require.ElementsMatch(t, []int64{1, 2, 3}, keys(ftssink.Near(5, "fox", "brown")))
	require.ElementsMatch(t, []int64{1, 2, 3, 4}, keys(ftssink.Near(6, "brown", "fox")))
	require.ElementsMatch(t, []int64{1}, keys(ftssink.Near(2, "quick brown", "jumps")), "a term of several words is a phrase")
	require.ElementsMatch(t, []int64{6}, keys(ftssink.Near(0, `"data"`, "big")), "quotes are literal")
	require.Empty(t, keys(ftssink.Near(5, "NEAR", "fox")))
	require.ElementsMatch(t, []int64{1, 2, 3, 4, 5}, keys(ftssink.Near(5, " ", "fox")), "FTS5 drops a term without tokens from the group")
	require.Empty(t, keys(ftssink.Near(5, "", "!!")), "a group without tokens matches nothing")
	require.ElementsMatch(t, []int64{3}, keys(ftssink.And(ftssink.Near(2, "brown", "fox"), ftssink.Not(ftssink.Term("quick")))))
	require.ElementsMatch(t, []int64{2}, keys(ftssink.Column("body", ftssink.Near(3, "dogs", "fox"))))
	require.Empty(t, keys(ftssink.Column("title", ftssink.Near(3, "dogs", "fox"))))

	_, err = ftssink.Matches(ctx, sqlDB, col, ftssink.Near(3, "brown", "fox"))
	require.ErrorIs(t, err, ftssink.ErrInvalidQuery)
	require.ErrorContains(t, err, "detail=full")
	_, err = ftssink.Matches(ctx, sqlDB, full, ftssink.Near(3))
	require.ErrorIs(t, err, ftssink.ErrInvalidQuery)
}
