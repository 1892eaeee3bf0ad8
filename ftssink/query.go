package ftssink

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// Query is a full-text query for Search, built with Term, Phrase, Prefix,
// Near, And, Or, Not, Column and Raw. It renders to an FTS5 MATCH expression.
//
// Every user string given to Term, Phrase, Prefix and Near is written as an FTS5
// string ("…", with " doubled), so that no input — quotes, *, ^, :, NEAR,
// AND, OR, NOT, parentheses, unicode, control characters, empty — can change
// the structure of the query or produce an FTS5 syntax error: the string is
// tokenized by the table's tokenizer exactly like the indexed text, and
// matches as its literal words would.
//
// A string with no tokens (empty, blanks, punctuation only) is an empty
// phrase, which matches nothing; so an And with such a Term matches nothing,
// an Or ignores it, and Not of it excludes nothing (this is FTS5's own
// behaviour for ""; the builder does not need to know the tokenizer).
//
// FTS5's NOT is binary ("a NOT b"), so Not may only appear as an operand of
// And with at least one operand that is not a Not: And(x, Not(y), Not(z))
// renders as ((x) NOT (y)) NOT (z). A Not anywhere else (alone, in Or, in
// Column, inside Not) cannot be expressed in FTS5 and is an error wrapping
// ErrInvalidQuery, as are And() and Or() without operands, a nil operand and
// a Column name that the table does not have.
type Query interface {
	// String returns the FTS5 expression the query renders to (column names
	// unchecked), or a description of why it cannot be rendered.
	String() string

	render(r *renderer, b *strings.Builder) error
}

// renderer carries what rendering needs to know about the target table.
type renderer struct {
	cols    []string // the table's columns; nil: any name (String)
	table   string   // for error messages
	tokenOK func(rune) bool
}

func newRenderer(spec *outbox.Spec) *renderer {
	r := &renderer{table: "?"}
	if spec != nil && spec.FTS != nil {
		r.table = spec.FTS.Table
		for _, c := range spec.FTS.Columns {
			r.cols = append(r.cols, c.Name)
		}
		if d := spec.FTS.Detail; d == "column" || d == "none" {
			// Phrases of several tokens are unsupported with detail=column
			// or none: Term splits words the way unicode61 does (letters,
			// numbers and private-use characters are token characters).
			r.tokenOK = func(c rune) bool {
				return unicode.IsLetter(c) || unicode.IsNumber(c) || unicode.Is(unicode.Co, c)
			}
		}
	}
	return r
}

// renderQuery renders q for the FTS5 table of spec.
func renderQuery(q Query, spec *outbox.Spec) (string, error) {
	if q == nil {
		return "", fmt.Errorf("%w: nil query", ErrInvalidQuery)
	}
	var b strings.Builder
	if err := q.render(newRenderer(spec), &b); err != nil {
		return "", err
	}
	return b.String(), nil
}

func stringOf(q Query) string {
	var b strings.Builder
	if err := q.render(newRenderer(nil), &b); err != nil {
		return "<invalid query: " + err.Error() + ">"
	}
	return b.String()
}

// quote writes s as an FTS5 string. NUL would end the expression early
// inside SQLite (an "unterminated string"), so it becomes a blank, which
// every tokenizer treats as a separator.
func quote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch c {
		case '"':
			b.WriteString(`""`)
		case 0:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

type termQuery struct{ s string }

// Term matches rows that contain every word of s, in any order and position.
// Words are separated by white space; each word is an FTS5 string, so a
// word the tokenizer splits ("e-mail") must appear as those adjacent tokens.
// For tables with detail=column or none, which cannot match adjacent tokens,
// words are split at every character that is not a letter or a number.
// A Term with no words matches nothing.
func Term(s string) Query { return termQuery{s} }

func (q termQuery) String() string { return stringOf(q) }

func (q termQuery) render(r *renderer, b *strings.Builder) error {
	split := func(c rune) bool { return unicode.IsSpace(c) || c == 0 }
	if r.tokenOK != nil {
		split = func(c rune) bool { return !r.tokenOK(c) }
	}
	words := strings.FieldsFunc(q.s, split)
	switch len(words) {
	case 0:
		b.WriteString(`""`)
	case 1:
		quote(b, words[0])
	default:
		b.WriteByte('(')
		for i, w := range words {
			if i > 0 {
				b.WriteString(" AND ")
			}
			quote(b, w)
		}
		b.WriteByte(')')
	}
	return nil
}

type phraseQuery struct{ s string }

// Phrase matches rows that contain the tokens of s adjacent and in order.
// A Phrase with no tokens matches nothing. Tables with detail=column or none
// cannot match phrases of several tokens: FTS5 refuses them, an error
// wrapping ErrQuerySyntax.
func Phrase(s string) Query { return phraseQuery{s} }

func (q phraseQuery) String() string { return stringOf(q) }

func (q phraseQuery) render(_ *renderer, b *strings.Builder) error {
	quote(b, q.s)
	return nil
}

type prefixQuery struct{ s string }

// Prefix matches rows that contain the tokens of s adjacent and in order, the
// last one as a prefix: Prefix("data") matches "database", Prefix("big da")
// matches "big data". A Prefix with no tokens matches nothing. On tables
// with detail=column or none, which cannot match adjacent tokens, Prefix
// requires every word of s (split like Term), the last one as a prefix.
// Declare prefix indexes on the tag (prefix=2,3) to make short prefixes
// fast.
func Prefix(s string) Query { return prefixQuery{s} }

func (q prefixQuery) String() string { return stringOf(q) }

func (q prefixQuery) render(r *renderer, b *strings.Builder) error {
	if r.tokenOK == nil {
		quote(b, q.s)
		b.WriteString(" *")
		return nil
	}
	words := strings.FieldsFunc(q.s, func(c rune) bool { return !r.tokenOK(c) })
	if len(words) == 0 {
		b.WriteString(`"" *`)
		return nil
	}
	if len(words) > 1 {
		b.WriteByte('(')
	}
	for i, w := range words {
		if i > 0 {
			b.WriteString(" AND ")
		}
		quote(b, w)
	}
	b.WriteString(" *")
	if len(words) > 1 {
		b.WriteByte(')')
	}
	return nil
}

type andQuery struct{ qs []Query }

// And matches rows that match every operand. Operands built with Not are
// exclusions: And(x, Not(y)) matches rows that match x and not y. At least
// one operand must not be a Not.
func And(qs ...Query) Query { return andQuery{qs} }

func (q andQuery) String() string { return stringOf(q) }

func (q andQuery) render(r *renderer, b *strings.Builder) error {
	if len(q.qs) == 0 {
		return fmt.Errorf("%w: And() without operands", ErrInvalidQuery)
	}
	var pos, neg []Query
	for _, x := range q.qs {
		switch x := x.(type) {
		case nil:
			return fmt.Errorf("%w: nil operand in And", ErrInvalidQuery)
		case notQuery:
			neg = append(neg, x.q)
		default:
			pos = append(pos, x)
		}
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: And with only Not operands: FTS5 needs a positive side (And(x, Not(y)))", ErrInvalidQuery)
	}
	var inner strings.Builder
	if err := join(r, &inner, pos, " AND "); err != nil {
		return err
	}
	expr := inner.String()
	for _, n := range neg {
		if n == nil {
			return fmt.Errorf("%w: Not(nil)", ErrInvalidQuery)
		}
		var nb strings.Builder
		if err := n.render(r, &nb); err != nil {
			return err
		}
		expr = "(" + expr + ") NOT (" + nb.String() + ")"
	}
	b.WriteString(expr)
	return nil
}

// join renders qs, each parenthesised when there are several, joined by op.
func join(r *renderer, b *strings.Builder, qs []Query, op string) error {
	if len(qs) == 1 {
		return qs[0].render(r, b)
	}
	for i, x := range qs {
		if i > 0 {
			b.WriteString(op)
		}
		b.WriteByte('(')
		if err := x.render(r, b); err != nil {
			return err
		}
		b.WriteByte(')')
	}
	return nil
}

type orQuery struct{ qs []Query }

// Or matches rows that match at least one operand. Operands cannot be Not.
func Or(qs ...Query) Query { return orQuery{qs} }

func (q orQuery) String() string { return stringOf(q) }

func (q orQuery) render(r *renderer, b *strings.Builder) error {
	if len(q.qs) == 0 {
		return fmt.Errorf("%w: Or() without operands", ErrInvalidQuery)
	}
	for _, x := range q.qs {
		if x == nil {
			return fmt.Errorf("%w: nil operand in Or", ErrInvalidQuery)
		}
	}
	return join(r, b, q.qs, " OR ")
}

type notQuery struct{ q Query }

// Not excludes the rows that match q. It is only valid as an operand of And
// (see Query): FTS5 has no unary NOT.
func Not(q Query) Query { return notQuery{q} }

func (q notQuery) String() string { return stringOf(q) }

func (q notQuery) render(*renderer, *strings.Builder) error {
	return fmt.Errorf("%w: Not outside And: FTS5 has no unary NOT, use And(x, Not(y))", ErrInvalidQuery)
}

type columnQuery struct {
	name string
	q    Query
}

// Column restricts q to one column of the table: the name is an FTS5 column
// (the model's column name in the fts5 tag), matched case-insensitively.
func Column(name string, q Query) Query { return columnQuery{name, q} }

func (q columnQuery) String() string { return stringOf(q) }

func (q columnQuery) render(r *renderer, b *strings.Builder) error {
	name := q.name
	if r.cols != nil {
		found := false
		for _, c := range r.cols {
			if strings.EqualFold(c, q.name) {
				name, found = c, true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: Column(%q): table %s has columns %s", ErrInvalidQuery, q.name, r.table, strings.Join(r.cols, ", "))
		}
	}
	if q.q == nil {
		return fmt.Errorf("%w: Column(%q, nil)", ErrInvalidQuery, q.name)
	}
	quote(b, name)
	b.WriteString(" : (")
	if err := q.q.render(r, b); err != nil {
		return err
	}
	b.WriteByte(')')
	return nil
}

// MaxNearDistance is the largest distance Near accepts.
const MaxNearDistance = 1 << 20

type nearQuery struct {
	distance int
	terms    []string
}

// Near matches rows in which the terms all occur, in any order, with at
// most distance tokens between each term and the next one of the group (FTS5's
// NEAR("a" "b", distance)); distance 0 means adjacent. Each term is written
// as an FTS5 string exactly like Phrase, so no input can change the query's
// structure: a term of several words must appear as those adjacent tokens.
// FTS5 leaves a term with no tokens (empty, blanks, punctuation) out of the
// group; a group in which no term has tokens matches nothing.
//
// FTS5 counts the tokens between the first and the last phrase of the
// group. NEAR needs token positions: on tables with detail=column or none,
// Near is an error wrapping ErrInvalidQuery, as are a Near without terms and
// a distance outside 0..MaxNearDistance. (FTS5's default distance, when a
// raw NEAR omits it, is 10.)
func Near(distance int, terms ...string) Query {
	return nearQuery{distance: distance, terms: append([]string(nil), terms...)}
}

func (q nearQuery) String() string { return stringOf(q) }

func (q nearQuery) render(r *renderer, b *strings.Builder) error {
	if len(q.terms) == 0 {
		return fmt.Errorf("%w: Near(%d) without terms", ErrInvalidQuery, q.distance)
	}
	if q.distance < 0 || q.distance > MaxNearDistance {
		return fmt.Errorf("%w: Near distance %d, want 0..%d", ErrInvalidQuery, q.distance, MaxNearDistance)
	}
	if r.tokenOK != nil {
		return fmt.Errorf("%w: Near on table %s: NEAR needs detail=full (token positions)", ErrInvalidQuery, r.table)
	}
	b.WriteString("NEAR(")
	for i, t := range q.terms {
		if i > 0 {
			b.WriteByte(' ')
		}
		quote(b, t)
	}
	b.WriteString(", " + strconv.Itoa(q.distance) + ")")
	return nil
}

type rawQuery struct{ expr string }

// Raw is an FTS5 expression written by the programmer, passed through as is
// (parenthesised when it is an operand). Never build it from user input:
// use Term, Phrase or Prefix for that. FTS5's errors on it (syntax, unknown
// column) come back from Search as errors wrapping ErrQuerySyntax.
func Raw(expr string) Query { return rawQuery{expr} }

func (q rawQuery) String() string { return q.expr }

func (q rawQuery) render(_ *renderer, b *strings.Builder) error {
	b.WriteString(q.expr)
	return nil
}

var (
	_ Query = termQuery{}
	_ Query = phraseQuery{}
	_ Query = prefixQuery{}
	_ Query = andQuery{}
	_ Query = orQuery{}
	_ Query = notQuery{}
	_ Query = columnQuery{}
	_ Query = rawQuery{}
	_ Query = nearQuery{}
)
