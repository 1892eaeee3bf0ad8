package ftssink_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/outbox/sinktest"
)

// dumpFTS lists every token instance (rowid, column, term, offset) through
// fts5vocab, and the deleted flags of the modes that store them.
func dumpFTS(spec *outbox.Spec) func(context.Context, outbox.DB) ([]string, error) {
	return func(ctx context.Context, db outbox.DB) ([]string, error) {
		f := spec.FTS.Table
		// The temp table exists on one connection: create and read it on
		// one, not on whichever the pool hands out.
		if pool, ok := db.(*sql.DB); ok {
			conn, err := pool.Conn(ctx)
			if err != nil {
				return nil, err
			}
			defer conn.Close()
			db = conn
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE VIRTUAL TABLE IF NOT EXISTS temp.%[1]s_vocab USING fts5vocab(main, %[1]s, instance)", f)); err != nil {
			return nil, err
		}
		rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT doc, col, term, offset FROM temp.%s_vocab", f))
		if err != nil {
			return nil, err
		}
		var out []string
		for rows.Next() {
			var doc, off int64
			var col, term string
			if err := rows.Scan(&doc, &col, &term, &off); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, fmt.Sprintf("%d %s %s %d", doc, col, term, off))
		}
		rows.Close()
		if spec.FTS.Mode != outbox.ModeExternal && spec.SoftDelete != "" {
			rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT rowid, deleted FROM %s", f))
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var id, d int64
				if err := rows.Scan(&id, &d); err != nil {
					rows.Close()
					return nil, err
				}
				out = append(out, fmt.Sprintf("%d deleted=%d", id, d))
			}
			rows.Close()
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %[1]s(%[1]s, rank) VALUES('integrity-check', 1)", f)); err != nil {
			return nil, fmt.Errorf("integrity-check: %w", err)
		}
		sort.Strings(out)
		return out, nil
	}
}

func TestTableConformance(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{outbox.ModeExternal, outbox.ModeInTable, outbox.ModeContentless} {
		for _, keyType := range []string{outbox.KeyInteger, outbox.KeyText} {
			if mode == outbox.ModeExternal && keyType == outbox.KeyText {
				continue
			}
			t.Run(mode+"/"+keyType, func(t *testing.T) {
				t.Parallel()
				spec := &outbox.Spec{Version: outbox.SpecVersion, Source: "docs", Key: "id", KeyType: keyType, SoftDelete: "deleted_at",
					FTS: &outbox.FTSSpec{Table: "docs_fts", Mode: mode, Tokenize: "porter unicode61",
						Columns: []outbox.FTSCol{{Name: "title", Source: "title"}, {Name: "body", Source: "body"}}}}
				if mode != outbox.ModeExternal {
					spec.FTS.Columns[1] = outbox.FTSCol{Name: "content", Source: "body"}
				}
				sinktest.Run(t, sinktest.Harness{
					Spec: spec,
					New:  func(s *outbox.Spec) (outbox.Sink, error) { return ftssink.NewTable(s) },
					Dump: dumpFTS(spec),
				})
			})
		}
	}
}
