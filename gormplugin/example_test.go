//go:build !outboxindexer_cgo

// The examples open the database with gormlite, the default engine's
// dialector (the cgo engine registers another driver under the same name).

package gormplugin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3/gormlite"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

type Post struct {
	ID        uint
	Title     string            `fts5:"tokenize=porter+unicode61"`
	Embedding vecsink.Embedding `vec:"dim=2;metric=cosine"`
}

func Example() {
	dir, _ := os.MkdirTemp("", "gormplugin")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(gormlite.Open(gormplugin.DSN(filepath.Join(dir, "app.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := db.Use(gormplugin.New()); err != nil {
		panic(err)
	}
	if err := gormplugin.Migrate(db, &Post{}); err != nil {
		panic(err)
	}

	p := Post{Title: "hello", Embedding: vecsink.Embedding{0.6, 0.8}}
	db.Create(&p)
	db.Model(&p).Update("title", "hello, world")
	db.Delete(&p)

	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	evs, _ := outbox.ReadEvents(context.Background(), sqlDB, 0, 10)
	for _, e := range evs {
		v, _ := outbox.DecodeVector(e.Vec)
		fmt.Println(e.Table, e.Key, e.Op, v, e.Old)
	}
	// Output:
	// posts 1 insert [0.6 0.8] []
	// posts 1 update [] [hello]
	// posts 1 delete [] [hello, world]
}
