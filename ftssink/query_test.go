package ftssink_test

import (
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/stretchr/testify/require"
)

func TestQueryString(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		q    ftssink.Query
		want string
	}{
		{ftssink.Term("alpha"), `"alpha"`},
		{ftssink.Term("  alpha \t beta\n"), `("alpha" AND "beta")`},
		{ftssink.Term(""), `""`},
		{ftssink.Term(" \t "), `""`},
		{ftssink.Term(`say "hi"`), `("say" AND """hi""")`},
		{ftssink.Term("a\x00b"), `("a" AND "b")`},
		{ftssink.Term("NOT AND OR NEAR(a b) col:x ^y z*"), `("NOT" AND "AND" AND "OR" AND "NEAR(a" AND "b)" AND "col:x" AND "^y" AND "z*")`},
		{ftssink.Phrase("big data"), `"big data"`},
		{ftssink.Phrase(`a "b" c`), `"a ""b"" c"`},
		{ftssink.Phrase(""), `""`},
		{ftssink.Phrase("a\x00b"), `"a b"`},
		{ftssink.Prefix("dat"), `"dat" *`},
		{ftssink.Prefix("big da"), `"big da" *`},
		{ftssink.Prefix(""), `"" *`},
		{ftssink.And(ftssink.Term("a")), `"a"`},
		{ftssink.And(ftssink.Term("a"), ftssink.Phrase("b c")), `("a") AND ("b c")`},
		{ftssink.Or(ftssink.Term("a"), ftssink.Prefix("b")), `("a") OR ("b" *)`},
		{ftssink.And(ftssink.Term("a"), ftssink.Not(ftssink.Term("b"))), `("a") NOT ("b")`},
		{ftssink.And(ftssink.Not(ftssink.Term("b")), ftssink.Term("a"), ftssink.Term("c"), ftssink.Not(ftssink.Or(ftssink.Term("d"), ftssink.Term("e")))),
			`((("a") AND ("c")) NOT ("b")) NOT (("d") OR ("e"))`},
		{ftssink.Column("title", ftssink.Term("a b")), `"title" : (("a" AND "b"))`},
		{ftssink.Column("title", ftssink.And(ftssink.Term("a"), ftssink.Not(ftssink.Term("b")))), `"title" : (("a") NOT ("b"))`},
		{ftssink.Raw(`title : a* NOT b`), `title : a* NOT b`},
		{ftssink.Or(ftssink.Raw(`a OR b`), ftssink.Term("c")), `(a OR b) OR ("c")`},
	} {
		require.Equal(t, c.want, c.q.String())
	}
	for _, q := range []ftssink.Query{
		ftssink.Not(ftssink.Term("a")),
		ftssink.And(),
		ftssink.Or(),
		ftssink.And(ftssink.Not(ftssink.Term("a"))),
		ftssink.Or(ftssink.Term("a"), ftssink.Not(ftssink.Term("b"))),
		ftssink.Column("title", ftssink.Not(ftssink.Term("b"))),
		ftssink.And(ftssink.Term("a"), ftssink.Not(ftssink.Not(ftssink.Term("b")))),
		ftssink.And(ftssink.Term("a"), nil),
		ftssink.Or(nil),
		ftssink.Column("title", nil),
		ftssink.And(ftssink.Term("a"), ftssink.Not(nil)),
	} {
		require.Contains(t, q.String(), "<invalid query: ftssink: invalid query")
	}
}
