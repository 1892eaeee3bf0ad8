package bench

import (
	"context"
	"fmt"
	"time"

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
// event in one transaction). It returns seconds per row.
func OursCreate(n int) Workload {
	return Workload{Name: "ours: gorm Create + outbox event", Unit: "µs/row", Run: func(ctx context.Context, dir string) (float64, error) {
		db, err := openIndexed(ctx, dir)
		if err != nil {
			return 0, err
		}
		defer Close(db)
		start := time.Now()
		if err := createEach(ctx, db, articles(n)); err != nil {
			return 0, err
		}
		return Since(start) / float64(n) * 1e6, nil
	}}
}

// OursCreateInBatches is CreateInBatches(batch) of n Articles through the
// plugin. It returns seconds per row.
func OursCreateInBatches(n, batch int) Workload {
	return Workload{Name: fmt.Sprintf("ours: CreateInBatches(%d) + events", batch), Unit: "µs/row", Run: func(ctx context.Context, dir string) (float64, error) {
		db, err := openIndexed(ctx, dir)
		if err != nil {
			return 0, err
		}
		defer Close(db)
		rows := articles(n)
		start := time.Now()
		if err := db.WithContext(ctx).CreateInBatches(rows, batch).Error; err != nil {
			return 0, err
		}
		return Since(start) / float64(n) * 1e6, nil
	}}
}

// updateViews increments Views of every row, one Update per row.
func updateViews(ctx context.Context, db *gorm.DB, model any, n int) (float64, error) {
	start := time.Now()
	for i := 1; i <= n; i++ {
		if err := db.WithContext(ctx).Model(model).Where("id = ?", i).Update("views", gorm.Expr("views + 1")).Error; err != nil {
			return 0, err
		}
	}
	return Since(start) / float64(n) * 1e6, nil
}

// OursUpdateCounter updates a non-indexed column of n indexed rows, one row
// per statement. It returns seconds per update.
func OursUpdateCounter(n int) Workload {
	return Workload{Name: "ours: Update of a non-indexed column", Unit: "µs/op", Run: func(ctx context.Context, dir string) (float64, error) {
		db, err := openIndexed(ctx, dir)
		if err != nil {
			return 0, err
		}
		defer Close(db)
		if err := db.WithContext(ctx).CreateInBatches(articles(n), 500).Error; err != nil {
			return 0, err
		}
		return updateViews(ctx, db, &Article{}, n)
	}}
}

// PlainUpdateCounter is the same update on the same table shape without the
// plugin.
func PlainUpdateCounter(n int) Workload {
	return Workload{Name: "plain gorm Update, no plugin", Unit: "µs/op", Run: func(ctx context.Context, dir string) (float64, error) {
		db, err := Open(dir)
		if err != nil {
			return 0, err
		}
		defer Close(db)
		if err := db.AutoMigrate(&CounterDoc{}); err != nil {
			return 0, err
		}
		rows := make([]CounterDoc, n)
		for i, d := range Docs(n) {
			rows[i] = CounterDoc{Title: d.Title, Body: d.Body}
		}
		if err := db.WithContext(ctx).CreateInBatches(rows, 500).Error; err != nil {
			return 0, err
		}
		return updateViews(ctx, db, &CounterDoc{}, n)
	}}
}
