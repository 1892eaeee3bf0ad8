//go:build !outboxindexer_cgo

// The examples open the database with gormlite, the default engine's
// dialector (the cgo engine registers another driver under the same name).

package indexer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3/gormlite"
	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Status with WithoutCounts is cheap enough to poll (it reads only the
// pending part of the log); a full Status also counts rows in the source
// table and its sidecars.
func ExampleIndexer_Status() {
	dir, _ := os.MkdirTemp("", "status-example-")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(gormlite.Open(gormplugin.DSN(filepath.Join(dir, "app.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := db.Use(gormplugin.New()); err != nil {
		panic(err)
	}
	if err := gormplugin.Migrate(db, &workerPost{}); err != nil {
		panic(err)
	}
	db.Create(&workerPost{Title: "Sailing to the volcano island", Embedding: []float32{1, 0, 0, 0}})
	db.Create(&workerPost{Title: "Baking bread in winter", Embedding: []float32{0, 1, 0, 0}})

	ctx := context.Background()
	ix, err := indexer.New(db)
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	st, err := ix.Status(ctx, indexer.WithoutCounts())
	if err != nil {
		panic(err)
	}
	fmt.Println("pending:", st.Pending)
	if _, err := ix.Drain(ctx); err != nil {
		panic(err)
	}
	st, err = ix.Status(ctx)
	if err != nil {
		panic(err)
	}
	for _, t := range st.Tables {
		fmt.Printf("%s: %d rows, %d pending\n", t.Table, t.SourceRows, t.Pending)
		for _, s := range t.Sidecars {
			fmt.Printf("  %s (%s): %d rows\n", s.Name, s.Kind, s.Rows)
		}
	}
	// Output:
	// pending: 2
	// worker_posts: 2 rows, 0 pending
	//   worker_posts_vec (vec0): 2 rows
	//   worker_posts_fts (fts5): 2 rows
}

// The in-process worker: start it once after Migrate, and the capture
// plugin wakes it after each commit.
func ExampleStart() {
	dir, _ := os.MkdirTemp("", "worker-example-")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(gormlite.Open(gormplugin.DSN(filepath.Join(dir, "app.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := db.Use(gormplugin.New(gormplugin.WithNotify(indexer.Wake))); err != nil {
		panic(err)
	}
	if err := gormplugin.Migrate(db, &workerPost{}); err != nil {
		panic(err)
	}

	ctx := context.Background()
	w, err := indexer.Start(ctx, db)
	if err != nil {
		panic(err)
	}
	defer w.Close() // waits for the batch in flight and releases the lease

	db.Create(&workerPost{Title: "Sailing to the volcano island", Embedding: []float32{1, 0, 0, 0}})
	db.Create(&workerPost{Title: "Baking bread in winter", Embedding: []float32{0, 1, 0, 0}})

	// Read your writes: wait until the worker has applied them.
	if err := w.Sync(ctx); err != nil {
		panic(err)
	}
	hits, _ := ftssink.Search[workerPost](ctx, db, ftssink.Term("island"))
	for _, h := range hits {
		fmt.Println("full text:", h.Model.Title)
	}
	near, _ := vecsink.KNN[workerPost](ctx, db, []float32{0, 0.9, 0.1, 0}, 1)
	for _, r := range near {
		fmt.Println("nearest:", r.Model.Title)
	}
	// Output:
	// full text: Sailing to the volcano island
	// nearest: Baking bread in winter
}

// SyncTx indexes a transaction's own writes inside it, so that searches
// through tx see them; a rollback undoes the writes and their indexing.
func ExampleIndexer_SyncTx() {
	dir, _ := os.MkdirTemp("", "synctx-example-")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(gormlite.Open(gormplugin.DSN(filepath.Join(dir, "app.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := db.Use(gormplugin.New()); err != nil {
		panic(err)
	}
	if err := gormplugin.Migrate(db, &workerPost{}); err != nil {
		panic(err)
	}
	ctx := context.Background()
	ix, err := indexer.New(db)
	if err != nil {
		panic(err)
	}
	defer ix.Close()

	search := func(tx *gorm.DB, word string) int {
		hits, err := ftssink.Search[workerPost](ctx, tx, ftssink.Term(word))
		if err != nil {
			panic(err)
		}
		return len(hits)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&workerPost{Title: "Sailing to the volcano island", Embedding: []float32{1, 0, 0, 0}}).Error; err != nil {
			return err
		}
		fmt.Println("before SyncTx:", search(tx, "volcano"))
		if err := ix.SyncTx(ctx, tx); err != nil {
			return err
		}
		fmt.Println("after SyncTx, in tx:", search(tx, "volcano"))
		near, err := vecsink.KNN[workerPost](ctx, tx, []float32{1, 0, 0, 0}, 1)
		if err != nil {
			return err
		}
		fmt.Println("nearest, in tx:", near[0].Model.Title)
		return errors.New("changed my mind")
	})
	fmt.Println("rolled back:", err)
	fmt.Println("after the rollback:", search(db, "volcano"))
	// Output:
	// before SyncTx: 0
	// after SyncTx, in tx: 1
	// nearest, in tx: Sailing to the volcano island
	// rolled back: changed my mind
	// after the rollback: 0
}

// exampleArticle's vector is computed by the indexer from its title and
// body: the application never sets it.
type exampleArticle struct {
	ID        uint
	Title     string
	Body      string
	Embedding vecsink.Embedding `vec:"dim=64;metric=cosine;from=Title,Body"`
}

// A vector derived from text (from=): give the indexer an embedder (here
// the deterministic HashEmbedder; in production vecsink.NewOpenAIEmbedder or
// vecsink.NewOllamaEmbedder), and every row's vector follows its text. An
// update that leaves the text as it was costs no embedding call.
func ExampleWithEmbedder() {
	dir, _ := os.MkdirTemp("", "embedder-example-")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(gormlite.Open(gormplugin.DSN(filepath.Join(dir, "app.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := db.Use(gormplugin.New()); err != nil {
		panic(err)
	}
	if err := gormplugin.Migrate(db, &exampleArticle{}); err != nil {
		panic(err)
	}
	ctx := context.Background()
	embedder := vecsink.HashEmbedder(64)
	ix, err := indexer.New(db, indexer.WithEmbedder(embedder, vecsink.WithBatchSize(32), vecsink.WithConcurrency(2)))
	if err != nil {
		panic(err)
	}
	defer ix.Close()

	volcano := exampleArticle{Title: "Sailing to the volcano island", Body: "ash and lava"}
	db.Create(&volcano)
	db.Create(&exampleArticle{Title: "Baking bread in winter", Body: "flour and yeast"})
	if _, err := ix.Drain(ctx); err != nil {
		panic(err)
	}
	db.Save(&volcano) // same text: no call
	if _, err := ix.Drain(ctx); err != nil {
		panic(err)
	}
	st, _ := ix.EmbedStatus()
	fmt.Println("texts embedded:", st.Texts)

	q, _ := embedder.Embed(ctx, []string{"volcano lava"})
	res, err := vecsink.KNN[exampleArticle](ctx, db, q[0], 1)
	if err != nil {
		panic(err)
	}
	fmt.Println("nearest:", res[0].Model.Title)

	err = db.Create(&exampleArticle{Title: "x", Embedding: make(vecsink.Embedding, 64)}).Error
	fmt.Println(errors.Is(err, gormplugin.ErrDerivedVector))
	// Output:
	// texts embedded: 2
	// nearest: Sailing to the volcano island
	// true
}
