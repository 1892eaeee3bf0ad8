package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/indexer"
)

var drainCommand = cli.Command{
	Name:          "drain",
	Summary:       "apply every pending event, then exit",
	Interruptible: true,
	Run:           runDrain,
}

const drainHelp = `
Apply every event pending in the outbox to the sidecars, then exit. If
another indexer holds the lease, wait until it has applied everything that
was pending (taking over if it dies).

Progress is a bar when stderr is a terminal, a log line every --log-every
otherwise. SIGINT or SIGTERM stops after the batch in flight (committed or
rolled back, never half applied), releases the lease and exits 0; a later
drain finishes the rest. The last line on stdout says what was applied.

With --embed-api (see run --help), drain also embeds every vector derived
from text (tag from=) that waits for it, and applies it; without, a
database with such vectors is refused (nothing is parked).`

// tuning holds the flags shared by drain, rebuild and run.
type tuning struct {
	batchSize int
	progress  string
	logEvery  time.Duration
}

func (t *tuning) registerProgress(fs *flag.FlagSet) {
	fs.StringVar(&t.progress, "progress", cli.ProgressAuto, "progress display: auto (a bar on a terminal, log lines otherwise), bar, log or off")
	fs.DurationVar(&t.logEvery, "log-every", 5*time.Second, "interval of progress log lines when no bar is drawn")
}

func runDrain(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("drain", "[flags]", drainHelp)
	var c cli.Common
	c.Register(fs, env, true)
	var t tuning
	fs.IntVar(&t.batchSize, "batch-size", indexer.DefaultBatchSize, "events per apply transaction")
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
	progress, err := cli.NewProgress("drain", t.progress, env.Stderr, log, t.logEvery)
	if err != nil {
		return err
	}

	var mu sync.Mutex
	var done, total int64
	observer := indexer.Observer{
		Batch: func(b indexer.BatchStats) {
			mu.Lock()
			done += int64(b.Events + b.Parked)
			total = max(total, done)
			d, tt := done, total
			mu.Unlock()
			progress.Update(d, tt)
		},
	}
	s, err := c.OpenIndexer(ctx, log, append([]indexer.Option{indexer.WithBatchSize(t.batchSize), indexer.WithObserver(observer)}, embOpts...)...)
	if err != nil {
		return err
	}
	defer s.Close()

	st, err := s.Indexer.Status(ctx, indexer.WithoutCounts())
	if err != nil {
		return err
	}
	mu.Lock()
	total = max(st.Pending, done)
	mu.Unlock()
	log.Info("drain started", "pending", st.Pending, "applied", st.Applied, "head", st.Head)
	progress.Update(0, st.Pending)

	start := time.Now()
	n, err := s.Indexer.Drain(ctx)
	progress.Finish()
	// Once the signal cancelled ctx, any error is the interruption itself
	// (a context error, or SQLite's "interrupted" for a statement in flight).
	interrupted := err != nil && ctx.Err() != nil
	if err != nil && !interrupted {
		return fmt.Errorf("drain: %w (applied %d events before the failure)", err, n)
	}
	// Report what is left with a fresh context: ours may be cancelled.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	after, serr := s.Indexer.Status(sctx, indexer.WithoutCounts())
	if serr != nil {
		return serr
	}
	elapsed := time.Since(start)
	attrs := []any{"applied", n, "pending", after.Pending, "dead_letters", after.DeadLetters, "checkpoint", after.Applied, "elapsed", elapsed.Round(time.Millisecond).String()}
	if interrupted {
		log.Info("drain interrupted by signal; the batch in flight was committed or rolled back", attrs...)
		fmt.Fprintf(env.Stdout, "interrupted: applied %d events, %d pending, %d dead letters\n", n, after.Pending, after.DeadLetters)
		return ctx.Err()
	}
	if es, ok := s.Indexer.EmbedStatus(); ok {
		attrs = append(attrs, "embedded", es.Embedded, "embed_requests", es.Requests, "embed_texts", es.Texts)
	}
	log.Info("drain finished", attrs...)
	fmt.Fprintf(env.Stdout, "applied %d events, %d pending, %d dead letters\n", n, after.Pending, after.DeadLetters)
	if es, ok := s.Indexer.EmbedStatus(); ok {
		fmt.Fprintf(env.Stdout, "embedded %d keys (%d unchanged, %d parked) in %d requests, %d keys wait for embeddings\n", es.Embedded, es.Unchanged, es.Parked, es.Requests, after.EmbedQueued)
	}
	return nil
}
