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

// Post is an indexed model: Title and Body share one FTS5 table (external
// content, the default for integer keys).
type Post struct {
	ID        uint
	Title     string `fts5:"tokenize=porter+unicode61"`
	Body      string `fts5:""`
	DeletedAt gorm.DeletedAt
}

func ExampleSearch() {
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
	if err := gormplugin.Migrate(db, &Post{}); err != nil {
		panic(err)
	}
	posts := []Post{
		{Title: "Indexing with SQLite", Body: "FTS5 gives SQLite fast full-text search over large databases."},
		{Title: "Vector search", Body: "sqlite-vec adds nearest-neighbour search to SQLite."},
		{Title: "Gardening", Body: "Tomatoes like sun; search for a warm place."},
		{Title: "Old SQLite notes", Body: "Soft-deleted, so search does not return it."},
	}
	db.Create(&posts)
	db.Delete(&posts[3])

	// Queries see what the indexer has applied: Sync waits for it.
	ix, err := indexer.New(db)
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	if err := ix.Sync(ctx); err != nil {
		panic(err)
	}

	// User input goes into Term, Phrase and Prefix: it can never break the
	// query, whatever it contains.
	q := ftssink.And(ftssink.Term("sqlite search"), ftssink.Not(ftssink.Prefix("vec")))
	hits, err := ftssink.Search[Post](ctx, db, q,
		ftssink.WithRanking(10, 1), // a title match counts ten times a body match
		ftssink.WithSnippet("body", "[", "]", "…", 6),
		ftssink.WithHighlight("title", "*", "*"))
	if err != nil {
		panic(err)
	}
	fmt.Println(q)
	for _, h := range hits {
		fmt.Printf("%s | %s\n", h.Highlights["title"], h.Snippets["body"])
	}
	// Output:
	// (("sqlite" AND "search")) NOT ("vec" *)
	// Indexing with *SQLite* | …[SQLite] fast full-text [search] over…
}
