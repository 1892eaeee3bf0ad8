//go:build !outboxindexer_cgo

// The examples open the database with gormlite, the default engine's
// dialector (the cgo engine registers another driver under the same name).

package hybrid_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3/gormlite"
	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/hybrid"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Recipe has both sidecars: a vector of its taste and its text.
type Recipe struct {
	ID        uint
	Name      string            `fts5:"tokenize=porter+unicode61"`
	Steps     string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=2;metric=l2"`
}

func ExampleSearch() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "hybrid")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(gormlite.Open(gormplugin.DSN(filepath.Join(dir, "app.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := db.Use(gormplugin.New()); err != nil {
		panic(err)
	}
	if err := gormplugin.Migrate(db, &Recipe{}); err != nil {
		panic(err)
	}
	db.Create(&[]Recipe{
		{Name: "Tomato soup", Steps: "Simmer tomatoes, blend.", Embedding: vecsink.Embedding{0.9, 0.1}},
		{Name: "Gazpacho", Steps: "Blend tomatoes and cucumber, chill.", Embedding: vecsink.Embedding{0.8, 0.3}},
		{Name: "Lemon tart", Steps: "Bake the crust, fill with lemon curd.", Embedding: vecsink.Embedding{0.1, 0.9}},
		{Name: "Tomato tart", Steps: "Bake the crust, top with tomatoes.", Embedding: vecsink.Embedding{0.4, 0.6}},
	})
	ix, err := indexer.New(db)
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	if err := ix.Sync(ctx); err != nil { // read-your-writes
		panic(err)
	}

	// "something like soup" (the vector) that mentions tomatoes (the text)
	res, err := hybrid.Search[Recipe](ctx, db, []float32{1, 0}, ftssink.Term("tomato"), hybrid.WithLimit(3))
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		fmt.Printf("%-12s score=%.4f vec#%d text#%d\n", r.Model.Name, r.Score, r.VecRank, r.TextRank)
	}
	// Gazpacho and Tomato tart tie (1/62 + 1/63): ties go to the smaller key.

	// Output:
	// Tomato soup  score=0.0328 vec#1 text#1
	// Gazpacho     score=0.0320 vec#2 text#3
	// Tomato tart  score=0.0320 vec#3 text#2
}
