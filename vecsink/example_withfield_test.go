//go:build !outboxindexer_cgo

// The example opens the database with gormlite, the default engine's
// dialector (the cgo engine registers another driver under the same name).

package vecsink_test

import (
	"context"
	"errors"
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

// Paper has two vector fields, each with its own vec0 sidecar (papers_vec
// and papers_abstract_emb_vec), dims and metric.
type Paper struct {
	ID          uint
	Title       string
	TitleEmb    vecsink.Embedding `vec:"dim=2;metric=l2"`
	AbstractEmb vecsink.Embedding `vec:"dim=3;metric=cosine"`
}

func ExampleWithField() {
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
	if err := gormplugin.Migrate(db, &Paper{}); err != nil {
		panic(err)
	}
	db.Create(&[]Paper{
		{Title: "Volcanoes", TitleEmb: vecsink.Embedding{1, 0}, AbstractEmb: vecsink.Embedding{0, 0, 1}},
		{Title: "Glaciers", TitleEmb: vecsink.Embedding{0, 1}, AbstractEmb: vecsink.Embedding{1, 0, 0}},
	})
	ix, err := indexer.New(db)
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	if err := ix.Sync(ctx); err != nil {
		panic(err)
	}

	byTitle, err := vecsink.KNN[Paper](ctx, db, []float32{1, 0}, 1, vecsink.WithField("TitleEmb"))
	if err != nil {
		panic(err)
	}
	byAbstract, err := vecsink.KNN[Paper](ctx, db, []float32{1, 0, 0}, 1, vecsink.WithField("AbstractEmb"))
	if err != nil {
		panic(err)
	}
	fmt.Println("by title:", byTitle[0].Model.Title)
	fmt.Println("by abstract:", byAbstract[0].Model.Title)

	_, err = vecsink.KNN[Paper](ctx, db, []float32{1, 0}, 1)
	fmt.Println(errors.Is(err, vecsink.ErrAmbiguousField))
	_, err = vecsink.KNN[Paper](ctx, db, []float32{1, 0}, 1, vecsink.WithField("BodyEmb"))
	fmt.Println(err)
	// Output:
	// by title: Volcanoes
	// by abstract: Glaciers
	// true
	// vecsink: no such vector field: WithField("BodyEmb"): table papers has vector fields TitleEmb (papers_vec), AbstractEmb (papers_abstract_emb_vec)
}
