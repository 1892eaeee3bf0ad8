package main

import (
	"context"
	"fmt"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
)

var replayCommand = cli.Command{
	Name:          "replay",
	Summary:       "re-apply the retained events from a log position",
	Interruptible: true,
	Run:           runReplay,
}

const replayHelp = `
Re-apply the retained events from log position --from (inclusive) up to the
checkpoint, bringing every key they touch to its source row and latest
vector again. Idempotent; the checkpoint does not move. External-content
FTS5 sidecars are skipped (use rebuild for them). SIGINT or SIGTERM stops
between batches and exits 0.`

func runReplay(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("replay", "--from N [flags]", replayHelp)
	var c cli.Common
	c.Register(fs, env, true)
	from := fs.Int64("from", -1, "first log position to re-apply (required; 0 or 1 = from the start)")
	if err := cli.ParseFlags(env, fs, args, false); err != nil {
		return err
	}
	if *from < 0 {
		return cli.Usagef("--from is required (a log position, 0 or more)")
	}
	log, err := c.Logger()
	if err != nil {
		return err
	}
	s, err := c.OpenIndexer(ctx, log)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	if err := s.Indexer.Replay(ctx, *from); err != nil {
		if ctx.Err() != nil { // the signal interrupted it between or inside batches
			log.Info("replay interrupted by signal", "err", err)
			fmt.Fprintln(env.Stdout, "interrupted: replay stopped")
			return ctx.Err()
		}
		return err
	}
	log.Info("replay finished", "from", *from, "elapsed", time.Since(start).Round(time.Millisecond).String())
	fmt.Fprintf(env.Stdout, "replayed from %d\n", *from)
	return nil
}
