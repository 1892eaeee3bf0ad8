package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/synth"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
)

var demoCommand = cli.Command{
	Name:    "demo",
	Summary: "create a sample database, index it and query it (needs nothing else)",
	Run:     runDemo,
}

const demoHelp = `
Create a sample database, write a few hundred articles through gorm with the
capture plugin, apply the outbox with the indexer, which also computes each
article's embedding from its title and body (the model tags the vector
from=Title,Body and the indexer is given an embedder), and print the nearest
neighbours of a query (vecsink.KNN) and a ranked full-text search with
snippets (ftssink.Search). Everything is deterministic and offline: texts
are synthetic and the embedder is vecsink.HashEmbedder, which hashes the
words (no model weights, no network). Then one article's title is edited:
only its vector is computed again.

The database is a temporary file, removed at the end, unless --path is
given: then it is created there (the file must not exist) and kept, so that
you can try the other commands on it:

  indexer demo --path demo.db
  indexer status --db demo.db`

// DemoDim is the dimension of the demo's embeddings.
const DemoDim = 384

// Article is the demo's model: two full-text fields (external-content FTS5,
// porter stemming) and a 384-dimension embedding ranked by cosine distance,
// which the indexer derives from the title and the body (from=).
type Article struct {
	ID        uint
	Title     string            `fts5:"tokenize=porter+unicode61"`
	Body      string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=384;metric=cosine;from=Title,Body"`
}

func runDemo(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("demo", "[flags]", demoHelp)
	var c cli.Common
	c.Register(fs, env, false)
	path := fs.String("path", "", "create the demo database at this path and keep it (default: a temporary file, removed)")
	rows := fs.Int("rows", 300, "number of sample articles")
	query := fs.String("query", "volcano island", "query text for both searches")
	k := fs.Int("k", 5, "results to show per search")
	seed := fs.Uint64("seed", 1, "seed of the synthetic texts")
	if err := cli.ParseFlags(env, fs, args, false); err != nil {
		return err
	}
	log, err := c.Logger()
	if err != nil {
		return err
	}
	switch {
	case *rows < 1 || *rows > 1_000_000:
		return cli.Usagef("--rows %d: want 1..1000000", *rows)
	case *k < 1 || *k > 100:
		return cli.Usagef("--k %d: want 1..100", *k)
	case strings.TrimSpace(*query) == "":
		return cli.Usagef("--query is empty")
	}

	file := *path
	if file == "" {
		dir, err := os.MkdirTemp("", "indexer-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		file = filepath.Join(dir, "demo.db")
	} else if _, err := os.Stat(file); err == nil {
		return fmt.Errorf("--path %s: the file exists; the demo only creates new databases", file)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--path %s: %w", file, err)
	}
	log.Info("demo database", "path", file)

	c.NoteDeprecated(log)
	db, closeDB, err := cli.OpenDSN(ctx, engine.DSN(file), log, c.Level())
	if err != nil {
		return err
	}
	defer closeDB()

	out := env.Stdout
	if err := db.Use(gormplugin.New()); err != nil {
		return fmt.Errorf("install capture plugin: %w", err)
	}
	if err := gormplugin.Migrate(db, &Article{}); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	articles := demoArticles(*seed, *rows)
	if err := db.WithContext(ctx).CreateInBatches(articles, 100).Error; err != nil {
		return fmt.Errorf("write articles: %w", err)
	}
	fmt.Fprintf(out, "Wrote %d articles through gorm: title and body indexed by FTS5 (porter), a %d-dimension embedding of them by sqlite-vec (cosine).\n", len(articles), DemoDim)

	ix, err := indexer.New(db, indexer.WithLogger(log), indexer.WithEmbedder(vecsink.HashEmbedder(DemoDim)))
	if err != nil {
		return err
	}
	defer ix.Close()
	applied, err := ix.Drain(ctx)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	es, _ := ix.EmbedStatus()
	fmt.Fprintf(out, "Indexer applied %d change events and embedded %d texts in %d requests.\n", applied, es.Texts, es.Requests)

	// Edit one title and touch another row without changing its text:
	// only the edited text is embedded again.
	if err := db.WithContext(ctx).Model(&articles[0]).Update("title", articles[0].Title+" revised").Error; err != nil {
		return fmt.Errorf("edit article: %w", err)
	}
	if err := db.WithContext(ctx).Save(&articles[1]).Error; err != nil {
		return fmt.Errorf("save article: %w", err)
	}
	if _, err := ix.Drain(ctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	es2, _ := ix.EmbedStatus()
	fmt.Fprintf(out, "Edited one title and saved another article unchanged: %d text embedded again.\n", es2.Texts-es.Texts)

	if err := demoKNN(ctx, out, db, *query, *k); err != nil {
		return err
	}
	if err := demoSearch(ctx, out, db, *query, *k); err != nil {
		return err
	}
	if *path != "" {
		fmt.Fprintf(out, "\nThe database is kept at %s. Try:\n  indexer status --db %s\n", *path, *path)
	}
	return nil
}

// demoArticles returns n deterministic articles (their embeddings are the
// indexer's job).
func demoArticles(seed uint64, n int) []Article {
	g := synth.New(seed, 0)
	out := make([]Article, n)
	for i := range out {
		title := g.Title()
		body := g.Text(40)
		out[i] = Article{Title: title, Body: body}
	}
	return out
}

func demoKNN(ctx context.Context, out io.Writer, db *gorm.DB, query string, k int) error {
	q, err := vecsink.HashEmbedder(DemoDim).Embed(ctx, []string{query})
	if err != nil {
		return fmt.Errorf("embed the query: %w", err)
	}
	res, err := vecsink.KNN[Article](ctx, db, q[0], k)
	if err != nil {
		return fmt.Errorf("knn: %w", err)
	}
	fmt.Fprintf(out, "\nNearest neighbours of %q (vecsink.KNN, cosine distance of hashed embeddings):\n", query)
	for i, r := range res {
		fmt.Fprintf(out, "  %d. #%-4d %.4f  %s\n", i+1, r.Model.ID, r.Distance, r.Model.Title)
	}
	return nil
}

func demoSearch(ctx context.Context, out io.Writer, db *gorm.DB, query string, k int) error {
	var terms []ftssink.Query
	for _, w := range strings.Fields(query) {
		terms = append(terms, ftssink.Term(w))
	}
	q := ftssink.Or(terms...)
	hits, err := ftssink.Search[Article](ctx, db, q,
		ftssink.WithLimit(k),
		ftssink.WithRanking(2, 1), // a match in the title counts twice
		ftssink.WithSnippet("body", "[", "]", "…", 10),
		ftssink.WithHighlight("title", "[", "]"),
	)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	fmt.Fprintf(out, "\nFull-text search for %q (ftssink.Search, bm25, title weighted 2):\n", query)
	if len(hits) == 0 {
		fmt.Fprintln(out, "  no match")
	}
	for i, h := range hits {
		fmt.Fprintf(out, "  %d. #%-4d %6.2f  %s\n           %s\n", i+1, h.Model.ID, h.Rank, h.Highlights["title"], h.Snippets["body"])
	}
	return nil
}
