package ftssink

// Hit is one result of Search: the model, its bm25 rank and the snippets and
// highlights asked for, keyed by column name (nil when none were asked for).
//
// Rank is FTS5's bm25() with the WithRanking weights: negative, and the
// lower the better. Hits are sorted by Rank, best first.
type Hit[T any] struct {
	Model      T
	Rank       float64
	Snippets   map[string]string
	Highlights map[string]string
}

// Match is one result of Matches: the primary key of the source row (int64
// for integer keys, string for text keys), with the same Rank, Snippets and
// Highlights as Hit.
type Match struct {
	Key        any
	Rank       float64
	Snippets   map[string]string
	Highlights map[string]string
}
