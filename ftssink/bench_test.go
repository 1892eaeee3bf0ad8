package ftssink_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm/clause"
)

// BenchmarkSearch compares Search with what it replaces: the raw FTS5 query
// plus one gorm Find of the ids (issue 7, target 8: at most 1.15×).
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	db := testdb.New(b)
	seedArticles(b, db, &inArticle{}, outbox.ModeInTable, 20000, rand.New(rand.NewPCG(1, 2)))
	sqlDB, err := db.DB()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Search", func(b *testing.B) {
		for b.Loop() {
			hs, err := ftssink.Search[inArticle](ctx, db, ftssink.Term("near"))
			if err != nil || len(hs) != 10 {
				b.Fatal(err, len(hs))
			}
		}
	})
	b.Run("raw+Find", func(b *testing.B) {
		for b.Loop() {
			rows, err := sqlDB.QueryContext(ctx, `SELECT rowid, bm25(in_articles_fts) FROM in_articles_fts
				WHERE in_articles_fts MATCH ? AND deleted = 0 ORDER BY bm25(in_articles_fts), rowid LIMIT 10`, `"near"`)
			if err != nil {
				b.Fatal(err)
			}
			var ids []any
			for rows.Next() {
				var id int64
				var r float64
				if err := rows.Scan(&id, &r); err != nil {
					b.Fatal(err)
				}
				ids = append(ids, id)
			}
			rows.Close()
			var out []inArticle
			col := clause.Column{Table: clause.CurrentTable, Name: "id"}
			if err := db.WithContext(ctx).Where(clause.IN{Column: col, Values: ids}).Find(&out).Error; err != nil || len(out) != 10 {
				b.Fatal(err, len(out))
			}
		}
	})
}
