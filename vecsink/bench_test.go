package vecsink_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm/clause"
)

// BenchmarkKNN compares KNN with what it replaces: the raw vec0 query plus
// one gorm Find of the ids (issue 7, target 8: at most 1.15×), and shows the
// cost of the dot metric's exact scan.
func BenchmarkKNN(b *testing.B) {
	ctx := context.Background()
	db := testdb.New(b)
	rng := rand.New(rand.NewPCG(1, 2))
	const n, dim = 20000, 384
	seed(b, db, &l2Item{}, outbox.MetricL2, n, dim, rng)
	seed(b, db, &dotItem{}, outbox.MetricDot, n, dim, rng)
	sqlDB, err := db.DB()
	if err != nil {
		b.Fatal(err)
	}
	q := randVec(rng, dim)
	blob, err := outbox.EncodeVector(q, dim, outbox.EncodingBinary)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("KNN/l2", func(b *testing.B) {
		for b.Loop() {
			if rs, err := vecsink.KNN[l2Item](ctx, db, q, 10); err != nil || len(rs) != 10 {
				b.Fatal(err, len(rs))
			}
		}
	})
	b.Run("raw+Find/l2", func(b *testing.B) {
		for b.Loop() {
			rows, err := sqlDB.QueryContext(ctx, `SELECT rowid, distance FROM l2_items_vec WHERE embedding MATCH ? AND k = 10 AND deleted = 0`, blob)
			if err != nil {
				b.Fatal(err)
			}
			var ids []any
			for rows.Next() {
				var id int64
				var d float64
				if err := rows.Scan(&id, &d); err != nil {
					b.Fatal(err)
				}
				ids = append(ids, id)
			}
			rows.Close()
			var out []l2Item
			col := clause.Column{Table: clause.CurrentTable, Name: "id"}
			if err := db.WithContext(ctx).Where(clause.IN{Column: col, Values: ids}).Find(&out).Error; err != nil || len(out) != 10 {
				b.Fatal(err, len(out))
			}
		}
	})
	b.Run("KNN/dot", func(b *testing.B) {
		for b.Loop() {
			if rs, err := vecsink.KNN[dotItem](ctx, db, q, 10); err != nil || len(rs) != 10 {
				b.Fatal(err, len(rs))
			}
		}
	})
}
