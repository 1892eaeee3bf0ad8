package bench

import (
	"context"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
)

// Article is the indexed model of every "ours" workload: two FTS5 fields
// (porter, external content) and a 384-d cosine vector.
type Article struct {
	ID        uint              `gorm:"primaryKey"`
	Title     string            `fts5:"tokenize=porter+unicode61"`
	Body      string            `fts5:"tokenize=porter+unicode61"`
	Views     int               // not indexed: updating it must cost nothing extra
	Embedding vecsink.Embedding `vec:"dim=384;metric=cosine"`
}

// CounterDoc is Article's table without the plugin, for the update baseline.
type CounterDoc struct {
	ID    uint `gorm:"primaryKey"`
	Title string
	Body  string
	Views int
}

// openIndexed opens a database in dir with the plugin and the Article model
// migrated.
func openIndexed(ctx context.Context, dir string, opts ...gormplugin.Option) (*gorm.DB, error) {
	db, err := Open(dir)
	if err != nil {
		return nil, err
	}
	if err := db.Use(gormplugin.New(opts...)); err != nil {
		Close(db)
		return nil, err
	}
	if err := gormplugin.Migrate(db.WithContext(ctx), &Article{}); err != nil {
		Close(db)
		return nil, err
	}
	return db, nil
}

func articles(n int) []Article {
	out := make([]Article, n)
	for i, d := range Docs(n) {
		out[i] = Article{Title: d.Title, Body: d.Body, Embedding: d.Vec}
	}
	return out
}

// createEach creates rows one gorm Create at a time.
func createEach(ctx context.Context, db *gorm.DB, rows []Article) error {
	for i := range rows {
		if err := db.WithContext(ctx).Create(&rows[i]).Error; err != nil {
			return err
		}
	}
	return nil
}

// OursCreate is n single-row Creates of Article through the plugin (row +
// event in one transaction). It returns µs per row.
func OursCreate(n int) Workload { return StepOursCreate().Workload(n, "µs/row") }

// OursCreateInBatches is CreateInBatches(batch) of n Articles through the
// plugin. It returns µs per row.
func OursCreateInBatches(n, batch int) Workload {
	return StepOursCreateInBatches(batch).Workload(n, "µs/row")
}

// OursUpdateCounter updates a non-indexed column of n indexed rows, one row
// per statement. It returns µs per update.
func OursUpdateCounter(n int) Workload { return StepOursUpdateCounter().Workload(n, "µs/op") }

// PlainUpdateCounter is the same update on the same table shape without the
// plugin.
func PlainUpdateCounter(n int) Workload { return StepPlainUpdateCounter().Workload(n, "µs/op") }
