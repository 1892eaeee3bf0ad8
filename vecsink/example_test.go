//go:build !outboxindexer_cgo

// The examples open the database with gormlite, the default engine's
// dialector (the cgo engine registers another driver under the same name).

package vecsink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3/gormlite"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Photo is an indexed model: its embedding lives in the vec0 sidecar, and
// its album is copied there as a metadata column for filters.
type Photo struct {
	ID        uint
	Caption   string
	Album     string
	Embedding vecsink.Embedding `vec:"dim=3;metric=cosine;metadata=album"`
}

func ExampleKNN() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "vecsink")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(gormlite.Open(gormplugin.DSN(filepath.Join(dir, "app.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := db.Use(gormplugin.New()); err != nil {
		panic(err)
	}
	if err := gormplugin.Migrate(db, &Photo{}); err != nil {
		panic(err)
	}
	db.Create(&[]Photo{
		{Caption: "red sunset", Album: "holidays", Embedding: vecsink.Embedding{0.9, 0.1, 0}},
		{Caption: "red car", Album: "city", Embedding: vecsink.Embedding{1, 0, 0.1}},
		{Caption: "green field", Album: "holidays", Embedding: vecsink.Embedding{0, 1, 0}},
		{Caption: "blue sea", Album: "holidays", Embedding: vecsink.Embedding{0.1, 0.2, 1}},
	})

	// Queries see what the indexer has applied: an application usually runs
	// ix.Run in a goroutine and calls ix.Sync before a read-your-writes query.
	ix, err := indexer.New(db)
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	if err := ix.Sync(ctx); err != nil {
		panic(err)
	}

	red := []float32{1, 0, 0}
	res, err := vecsink.KNN[Photo](ctx, db, red, 2)
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		fmt.Printf("%s %.4f\n", r.Model.Caption, r.Distance)
	}
	res, err = vecsink.KNN[Photo](ctx, db, red, 2, vecsink.WithFilter("album = ?", "holidays"))
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		fmt.Printf("holidays: %s %.4f\n", r.Model.Caption, r.Distance)
	}
	// Output:
	// red car 0.0050
	// red sunset 0.0061
	// holidays: red sunset 0.0061
	// holidays: blue sea 0.9024
}
