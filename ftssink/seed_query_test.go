package ftssink_test

import (
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/stretchr/testify/require"
)

// TestSeedBuilderInputs renders the inputs of the seed library's FTS query
// builder tests (fts/query_test.go) with ours. Where the meaning differs
// (docs/MIGRATING.md), the seed's output is given in the comment.
func TestSeedBuilderInputs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		q    ftssink.Query
		want string
	}{
		// TestBuild_Term: operator keywords and quotes are literal
		{ftssink.Term("fox"), `"fox"`},
		{ftssink.Term("AND"), `"AND"`},
		{ftssink.Term("NEAR"), `"NEAR"`},
		{ftssink.Term(`a "b" c`), `("a" AND """b""" AND "c")`}, // seed: "a ""b"" c" (a phrase)
		{ftssink.Phrase(`a "b" c`), `"a ""b"" c"`},             // the seed's Term meaning
		{ftssink.Term(""), `""`},
		// TestBuild_Phrase
		{ftssink.Phrase("brown dog"), `"brown dog"`},
		{ftssink.Phrase("a b c"), `"a b c"`},
		{ftssink.Phrase(`he said "hi"`), `"he said ""hi"""`},
		{ftssink.Phrase(""), `""`},
		// TestBuild_Prefix: quoted here (seed: ru*, and * for "")
		{ftssink.Prefix("ru"), `"ru" *`},
		{ftssink.Prefix(""), `"" *`},
		// TestBuild_And, TestBuild_Or
		{ftssink.And(ftssink.Term("a"), ftssink.Term("b")), `("a") AND ("b")`},
		{ftssink.And(ftssink.Term("a"), ftssink.Term("b"), ftssink.Term("c")), `("a") AND ("b") AND ("c")`},
		{ftssink.Or(ftssink.Term("a"), ftssink.Term("b")), `("a") OR ("b")`},
		// TestBuild_Not_MultipleNegatives: seed Not(a, b, c) = ("a") NOT (("b") OR ("c"))
		{ftssink.And(ftssink.Term("a"), ftssink.Not(ftssink.Or(ftssink.Term("b"), ftssink.Term("c")))), `("a") NOT (("b") OR ("c"))`},
		{ftssink.And(ftssink.Term("a"), ftssink.Not(ftssink.Term("b")), ftssink.Not(ftssink.Term("c"))), `(("a") NOT ("b")) NOT ("c")`},
		// TestBuild_Near: seed Near(0, …) omits the distance (FTS5's 10)
		{ftssink.Near(10, "foo", "bar"), `NEAR("foo" "bar", 10)`},
		{ftssink.Near(5, "foo", "bar"), `NEAR("foo" "bar", 5)`},
		{ftssink.Near(3, "x", "y", "z"), `NEAR("x" "y" "z", 3)`},
		// TestBuild_Column: quoted here (seed: title: ("fox"))
		{ftssink.Column("title", ftssink.Term("fox")), `"title" : ("fox")`},
		{ftssink.Column("body", ftssink.And(ftssink.Term("fox"), ftssink.Term("dog"))), `"body" : (("fox") AND ("dog"))`},
		// TestBuild_Raw
		{ftssink.Raw("foo OR (bar NEAR baz)"), "foo OR (bar NEAR baz)"},
	} {
		require.Equal(t, c.want, c.q.String())
	}
	// seed: Not(a) with no negatives is just a; here Not must be an And operand
	require.Contains(t, ftssink.Not(ftssink.Term("a")).String(), "invalid query")
}
