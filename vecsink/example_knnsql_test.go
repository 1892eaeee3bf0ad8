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

// Song is an indexed model; its artist lives in another table.
type Song struct {
	ID        uint
	ArtistID  uint
	Title     string
	Embedding vecsink.Embedding `vec:"dim=2;metric=l2"`
}

// Artist is a plain gorm model, not indexed.
type Artist struct {
	ID   uint
	Name string
}

func ExampleKNNSQL() {
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
	if err := gormplugin.Migrate(db, &Song{}); err != nil {
		panic(err)
	}
	if err := db.AutoMigrate(&Artist{}); err != nil {
		panic(err)
	}
	db.Create(&[]Artist{{ID: 1, Name: "Nina"}, {ID: 2, Name: "Miles"}})
	db.Create(&[]Song{
		{ArtistID: 1, Title: "Feeling Good", Embedding: vecsink.Embedding{0.9, 0.1}},
		{ArtistID: 2, Title: "So What", Embedding: vecsink.Embedding{0.2, 0.8}},
		{ArtistID: 2, Title: "Blue in Green", Embedding: vecsink.Embedding{0.7, 0.4}},
	})
	ix, err := indexer.New(db)
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	if err := ix.Sync(ctx); err != nil {
		panic(err)
	}

	// The statement KNN would run, with the artist's name joined in: the
	// source table "songs" is joined under its own name.
	stmt, args, err := vecsink.KNNSQL[Song](ctx, db, []float32{1, 0}, 2,
		vecsink.WithJoin("JOIN artists ON artists.id = songs.artist_id"),
		vecsink.WithSelect("songs.title", "artists.name AS artist"))
	if err != nil {
		panic(err)
	}
	var rows []struct {
		ID       uint
		Distance float64
		Title    string
		Artist   string
	}
	if err := db.Raw(stmt, args...).Scan(&rows).Error; err != nil {
		panic(err)
	}
	for _, r := range rows {
		fmt.Printf("%d %-13s %-5s %.4f\n", r.ID, r.Title, r.Artist, r.Distance)
	}
	// Output:
	// 1 Feeling Good  Nina  0.1414
	// 3 Blue in Green Miles 0.5000
}
