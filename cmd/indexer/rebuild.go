package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/indexer"
)

var rebuildCommand = cli.Command{
	Name:          "rebuild",
	Summary:       "re-create sidecars from the source rows and the retained log",
	Interruptible: true,
	Run:           runRebuild,
}

const rebuildHelp = `
Re-create the sidecars of the given tables (every registered table without
--table) from authoritative data: full-text from the source rows, vectors
from the retained log. It repairs rows bulk-loaded with raw SQL, sidecars
dropped by hand, a spec changed in the model tags (what Migrate reports), and
reclaims the space of deleted vectors.

The rebuild is online: the next generation of the sidecars is built beside
the live one in short transactions (each holding the write lock for about
--step) while the application keeps writing, then swapped in with one short
transaction. Queries see the old sidecars, complete, until the swap, and the
new ones after it. Progress is stored in the database: SIGINT or SIGTERM
stops it (exit 0), and the next "indexer rebuild" of the table, or any
"indexer run" or "indexer drain" on the database, continues where it stopped.
"indexer status" shows a rebuild in progress.

With --offline the rebuild runs in one transaction instead (faster; writers
wait for it): SIGINT or SIGTERM rolls it back and nothing changes.

Progress is a bar when stderr is a terminal, a log line every --log-every
otherwise.

Vectors derived from text (tag from=) are refilled from the log too, and
every row is queued for embedding: rows whose text (and embedding model)
did not change keep their vector at no cost. With --embed-api (see run
--help) the rebuild then embeds the rest; without, they wait for the next
drain or run with an embedder.`

func runRebuild(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("rebuild", "[--table T ...] [flags]", rebuildHelp)
	var c cli.Common
	c.Register(fs, env, true)
	var tables cli.StringsFlag
	fs.Var(&tables, "table", "source table to rebuild (repeatable, or comma-separated; default: all)")
	var t tuning
	fs.IntVar(&t.batchSize, "batch-size", indexer.DefaultRebuildBatchSize, "source rows per fill statement (--offline)")
	offline := fs.Bool("offline", false, "rebuild in one write transaction (writers wait for it)")
	step := fs.Duration("step", indexer.DefaultRebuildStep, "how long each transaction of an online rebuild aims to hold the write lock")
	t.registerProgress(fs)
	var emb cli.EmbedFlags
	emb.Register(fs, env)
	if err := cli.ParseFlags(env, fs, args, false); err != nil {
		return err
	}
	embOpts, err := emb.Options()
	if err != nil {
		return err
	}
	log, err := c.Logger()
	if err != nil {
		return err
	}
	if t.batchSize < 1 {
		return cli.Usagef("--batch-size %d: want at least 1", t.batchSize)
	}
	if err := cli.CheckProgressMode(t.progress); err != nil {
		return err
	}
	if *step <= 0 {
		return cli.Usagef("--step %v: want a positive duration", *step)
	}

	// One progress display per sidecar (offline) or per table (online),
	// replaced when the next one starts.
	var mu sync.Mutex
	var cur *cli.Progress
	var curName string
	report := func(p indexer.Progress) {
		mu.Lock()
		defer mu.Unlock()
		name := p.Sidecar
		if p.Phase != "" {
			name = p.Table
		}
		if name != curName || cur == nil {
			if cur != nil {
				cur.Finish()
			}
			curName = name
			next, err := cli.NewProgress("rebuild "+name, t.progress, env.Stderr, log, t.logEvery)
			if err != nil {
				return // not reached: the mode was checked above
			}
			cur = next
			cur.SetUnit("rows")
		}
		cur.Update(p.Done, p.Total)
	}
	opts := append([]indexer.Option{indexer.WithRebuildBatchSize(t.batchSize), indexer.WithProgress(report), indexer.WithRebuildStep(*step)}, embOpts...)
	if *offline {
		opts = append(opts, indexer.WithOffline())
	}
	s, err := c.OpenIndexer(ctx, log, opts...)
	if err != nil {
		return err
	}
	defer s.Close()

	start := time.Now()
	log.Info("rebuild started", "tables", tablesAttr(tables))
	err = s.Indexer.Rebuild(ctx, tables...)
	mu.Lock()
	if cur != nil {
		cur.Finish()
	}
	mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			if *offline { // the signal interrupted it: the transaction rolled back
				log.Info("rebuild interrupted by signal; rolled back, nothing changed", "err", err)
				fmt.Fprintln(env.Stdout, "interrupted: rebuild rolled back")
				return ctx.Err()
			}
			log.Info("rebuild interrupted by signal; its progress is kept and the next rebuild, run or drain continues it", "err", err)
			fmt.Fprintln(env.Stdout, "interrupted: rebuild paused, it continues on the next run")
			return ctx.Err()
		}
		return err
	}
	log.Info("rebuild finished", "tables", tablesAttr(tables), "elapsed", time.Since(start).Round(time.Millisecond).String())
	fmt.Fprintf(env.Stdout, "rebuilt %s\n", tablesAttr(tables))
	// Derived vectors (from=) of text that changed, or of a new model, are
	// queued by the rebuild: embed them now when an embedder is given.
	if _, ok := s.Indexer.EmbedStatus(); ok {
		if _, err := s.Indexer.Drain(ctx); err != nil {
			return fmt.Errorf("rebuild: embed the queued keys: %w", err)
		}
		es, _ := s.Indexer.EmbedStatus()
		fmt.Fprintf(env.Stdout, "embedded %d keys (%d unchanged) in %d requests\n", es.Embedded, es.Unchanged, es.Requests)
		return nil
	}
	if st, err := s.Indexer.Status(ctx, indexer.WithoutCounts()); err == nil && st.EmbedQueued > 0 {
		fmt.Fprintf(env.Stdout, "%d keys wait for embeddings: run `indexer drain` or `indexer run` with --embed-api\n", st.EmbedQueued)
	}
	return nil
}

func tablesAttr(tables []string) string {
	if len(tables) == 0 {
		return "all tables"
	}
	return fmt.Sprint(tables)
}
