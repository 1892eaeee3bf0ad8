package outbox

import (
	"context"
	"strings"
)

// execValues runs head + " VALUES (?, …), (?, …) …" + tail for rows 0 to
// n-1, in statements of at most keyChunk rows; row(i) returns the width
// values of row i.
func execValues(ctx context.Context, db DB, head, tail string, width, n int, row func(i int) []any) error {
	tuple := "(" + Placeholders(width) + ")"
	for start := 0; start < n; start += keyChunk {
		end := min(start+keyChunk, n)
		args := make([]any, 0, width*(end-start))
		var q strings.Builder
		q.Grow(len(head) + len(tail) + 8 + (len(tuple)+2)*(end-start))
		q.WriteString(head)
		q.WriteString(" VALUES ")
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(", ")
			}
			q.WriteString(tuple)
			args = append(args, row(i)...)
		}
		q.WriteString(tail)
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
