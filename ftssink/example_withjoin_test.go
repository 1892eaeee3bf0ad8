//go:build !outboxindexer_cgo

// The examples open the database with gormlite, the default engine's
// dialector (the cgo engine registers another driver under the same name).

package ftssink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3/gormlite"
	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Story is an indexed model with a tenant and an author in other columns.
type Story struct {
	ID       uint
	Tenant   string
	AuthorID uint
	Title    string `fts5:"tokenize=porter+unicode61"`
}

// Writer is a plain gorm model, not indexed.
type Writer struct {
	ID   uint
	Name string
}

func ExampleWithJoin() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ftssink")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(gormlite.Open(gormplugin.DSN(filepath.Join(dir, "app.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := db.Use(gormplugin.New()); err != nil {
		panic(err)
	}
	if err := gormplugin.Migrate(db, &Story{}); err != nil {
		panic(err)
	}
	if err := db.AutoMigrate(&Writer{}); err != nil {
		panic(err)
	}
	db.Create(&[]Writer{{ID: 1, Name: "Ursula"}, {ID: 2, Name: "Italo"}})
	db.Create(&[]Story{
		{Tenant: "acme", AuthorID: 1, Title: "The dragon of the north"},
		{Tenant: "acme", AuthorID: 2, Title: "Invisible dragons, invisible cities"},
		{Tenant: "other", AuthorID: 1, Title: "A dragon at sea"},
	})
	ix, err := indexer.New(db)
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	if err := ix.Sync(ctx); err != nil {
		panic(err)
	}

	// Full-text hits of one tenant with the author's name, in one statement:
	// the source table "stories" is joined under its own name.
	stmt, args, err := ftssink.SearchSQL[Story](ctx, db, ftssink.Term("dragon"),
		ftssink.WithJoin("JOIN writers ON writers.id = stories.author_id"),
		ftssink.WithSelect("stories.title", "writers.name AS author"),
		ftssink.WithFilter("stories.tenant = ?", "acme"),
		ftssink.WithOrderBy("writers.name"))
	if err != nil {
		panic(err)
	}
	var rows []struct {
		ID     uint
		Title  string
		Author string
	}
	if err := db.Raw(stmt, args...).Scan(&rows).Error; err != nil {
		panic(err)
	}
	for _, r := range rows {
		fmt.Printf("%d %s (%s)\n", r.ID, r.Title, r.Author)
	}

	// Search takes the same join, here as a filter on the author; hits
	// are ranked by bm25 (the shorter title ranks first).
	hits, err := ftssink.Search[Story](ctx, db, ftssink.Term("dragon"),
		ftssink.WithJoin("JOIN writers ON writers.id = stories.author_id AND writers.name = ?", "Ursula"))
	if err != nil {
		panic(err)
	}
	for _, h := range hits {
		fmt.Println(h.Model.Tenant, h.Model.Title)
	}
	// Output:
	// 2 Invisible dragons, invisible cities (Italo)
	// 1 The dragon of the north (Ursula)
	// other A dragon at sea
	// acme The dragon of the north
}
