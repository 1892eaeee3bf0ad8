// Package sqlfrag checks the SQL fragments that callers pass to the query
// options (filters, joins, extra result columns, orderings) before they are
// pasted into a generated statement. The text of a fragment is trusted code,
// but a mistake in it must not silently change the shape of the statement
// around it: a fragment is rejected when it holds a statement separator, a
// comment, an unterminated string or identifier, unbalanced parentheses, a
// clause keyword at its top level that belongs to the surrounding statement
// (WHERE, ORDER, LIMIT, UNION, …), numbered or named parameters, or a number
// of "?" placeholders different from the number of arguments given with it.
//
// It is a lexical check, not a parser: SQLite still reports the errors of a
// well-formed fragment (an unknown column) when the statement is prepared.
package sqlfrag

import (
	"fmt"
	"strings"
)

// Kind is the place a fragment takes in the generated statement.
type Kind int

const (
	// Expr is a boolean condition ANDed into the WHERE clause.
	Expr Kind = iota
	// Columns is a list of result columns ("expr [AS alias], …").
	Columns
	// Join is one or more join operators with their tables and constraints
	// ("JOIN t ON …", "LEFT JOIN t AS x ON …").
	Join
	// Order is a list of ordering terms ("expr [ASC|DESC] [NULLS FIRST|LAST], …").
	Order
)

func (k Kind) String() string {
	switch k {
	case Expr:
		return "condition"
	case Columns:
		return "result columns"
	case Join:
		return "join clause"
	default:
		return "ordering"
	}
}

// clause keywords that end the fragment's own clause in the surrounding
// statement; none may appear outside parentheses.
var forbidden = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "GROUP": true, "HAVING": true, "ORDER": true,
	"LIMIT": true, "OFFSET": true, "UNION": true, "INTERSECT": true, "EXCEPT": true,
	"WINDOW": true, "VALUES": true, "RETURNING": true,
}

// joinWords may open a join clause and appear between its joins.
var joinStart = map[string]bool{"JOIN": true, "INNER": true, "LEFT": true, "CROSS": true}

// lexed is what the lexer found at the top level of a fragment.
type lexed struct {
	words        []string // upper-cased bare words outside parentheses and quotes
	placeholders int
	empty        bool
}

// Check returns an error describing why s cannot be used as a fragment of
// kind k with nargs bound arguments, or nil.
func Check(k Kind, s string, nargs int) error {
	lx, err := lex(s)
	if err != nil {
		return err
	}
	if lx.empty {
		return fmt.Errorf("empty %s", k)
	}
	if lx.placeholders != nargs {
		return fmt.Errorf("%s has %d ? placeholders but %d arguments", k, lx.placeholders, nargs)
	}
	if k == Columns && nargs > 0 {
		return fmt.Errorf("%s takes no arguments", k)
	}
	for i, w := range lx.words {
		if !forbidden[w] {
			if k == Expr || k == Columns || k == Order {
				if w == "JOIN" {
					return fmt.Errorf("%s holds JOIN outside parentheses (use the join option)", k)
				}
			}
			if k == Join && (w == "RIGHT" || w == "FULL" || w == "NATURAL") {
				return fmt.Errorf("%s uses a %s join: only JOIN, INNER JOIN, LEFT [OUTER] JOIN and CROSS JOIN keep every hit's key", k, w)
			}
			continue
		}
		// "a IS [NOT] DISTINCT FROM b" is an expression.
		if w == "FROM" && i > 0 && lx.words[i-1] == "DISTINCT" {
			continue
		}
		return fmt.Errorf("%s holds %s outside parentheses: a fragment cannot add a clause to the statement", k, w)
	}
	if k == Join && (len(lx.words) == 0 || !joinStart[lx.words[0]]) {
		return fmt.Errorf("%s must start with JOIN, INNER JOIN, LEFT JOIN or CROSS JOIN: %q", k, s)
	}
	return nil
}

// lex scans s the way SQLite's tokenizer delimits strings, quoted
// identifiers, comments and parameters.
func lex(s string) (lexed, error) {
	var lx lexed
	lx.empty = strings.TrimSpace(s) == ""
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"' || c == '`' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for {
				if j >= len(s) {
					return lx, fmt.Errorf("unterminated %c at byte %d", c, i)
				}
				if s[j] == end {
					if end != ']' && j+1 < len(s) && s[j+1] == end {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
		case c == ';':
			return lx, fmt.Errorf("statement separator ';' at byte %d", i)
		case c == 0:
			return lx, fmt.Errorf("NUL byte at byte %d", i)
		case c == '-' && i+1 < len(s) && s[i+1] == '-', c == '/' && i+1 < len(s) && s[i+1] == '*':
			return lx, fmt.Errorf("comment at byte %d", i)
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			if depth < 0 {
				return lx, fmt.Errorf("unbalanced ')' at byte %d", i)
			}
			i++
		case c == '?':
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				return lx, fmt.Errorf("numbered parameter at byte %d: use plain ?", i)
			}
			lx.placeholders++
			i++
		case c == ':' || c == '@' || c == '$':
			if i+1 < len(s) && isWordByte(s[i+1]) {
				return lx, fmt.Errorf("named parameter at byte %d: use plain ?", i)
			}
			i++
		case isWordByte(c) && !(c >= '0' && c <= '9'):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			if depth == 0 {
				lx.words = append(lx.words, strings.ToUpper(s[i:j]))
			}
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && (isWordByte(s[j]) || s[j] == '.') {
				j++
			}
			i = j
		default:
			i++
		}
	}
	if depth != 0 {
		return lx, fmt.Errorf("%d unclosed '('", depth)
	}
	return lx, nil
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
