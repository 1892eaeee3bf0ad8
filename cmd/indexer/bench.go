package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench"
	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/internal/engine"
)

var benchCommand = cli.Command{
	Name:          "bench",
	Summary:       "measure every hot path against its baseline, in the same run",
	Interruptible: true,
	Run:           runBench,
}

const benchHelp = `
Run the performance suite (issue 7) and print one table: for each
measurement our figure and its baseline, both measured in this run on the
same synthetic data (~200-word documents from a 5k-word Zipf vocabulary,
384-dimension vectors; seeded), as the median and min–max of --reps
interleaved repetitions, and the ratio against the target. The quick sizes
take a few minutes on 2 cores; --full uses the issue's sizes (100k rows,
30 s of lag per rate). Nothing is asserted: read the "met" column.`

func runBench(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("bench", "[flags]", benchHelp)
	var c cli.Common
	c.Register(fs, env, false)
	full := fs.Bool("full", false, "use the issue's full sizes (100k rows; takes long)")
	reps := fs.Int("reps", 5, "repetitions of each measurement")
	only := fs.String("only", "", "comma-separated target numbers to run, e.g. 1,4,8 (default all)")
	lag := fs.Duration("lag", 0, "duration of each lag measurement (default 10s, 30s with --full)")
	rows := fs.Int("capture-rows", 5000, "rows of the single-row capture measurements")
	onlineRows := fs.Int("online-rebuild", 0, "run only the online rebuild scenario (issue 16) on this many rows, e.g. 100000 or 1000000")
	onlineRate := fs.Int("online-rebuild-rate", 200, "application writes per second during the online rebuild scenario")
	offlineWriters := fs.Bool("online-rebuild-offline-writers", false, "keep the application writing during the offline rebuild of the scenario too")
	drainRows := fs.Int("drain", 0, "run only the drain figures (issue 16) on this many pending inserts, e.g. 1000000: throughput against the raw limit, and peak RSS against a tenth of the rows")
	if err := cli.ParseFlags(env, fs, args, false); err != nil {
		return err
	}
	if *reps < 1 {
		return cli.Usagef("--reps must be at least 1")
	}
	log, err := c.Logger()
	if err != nil {
		return err
	}
	c.NoteDeprecated(log)

	if *onlineRows > 0 {
		if *onlineRate < 1 {
			return cli.Usagef("--online-rebuild-rate must be at least 1")
		}
		return runOnlineRebuildBench(ctx, env, log, *onlineRows, *onlineRate, *offlineWriters)
	}

	batch := 20000
	if *full {
		batch = 100000
	}
	cases := append(bench.CaptureCases(*rows, batch), bench.ApplySuite(*full, *lag)...)
	if *drainRows > 0 {
		cases = bench.DrainScaleCases(*drainRows)
	}
	if *only != "" {
		want := strings.Split(*only, ",")
		cases = slices.DeleteFunc(cases, func(cs bench.Case) bool { return !slices.Contains(want, cs.ID) })
	}
	defer bench.CloseFixtures()
	defer bench.RemoveBinary()
	defer bench.RemoveCgoEngine()

	root, err := os.MkdirTemp("", "indexer-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	r := bench.Runner{
		Reps:    *reps,
		TempDir: func() (string, error) { return os.MkdirTemp(root, "rep-") },
		Log: func(format string, a ...any) {
			log.Info(fmt.Sprintf(format, a...))
		},
	}
	start := time.Now()
	results := r.Run(ctx, cases)
	if ctx.Err() != nil {
		fmt.Fprintln(env.Stdout, "interrupted: the table covers what finished")
	}
	fmt.Fprintf(env.Stdout, "outboxindexer bench — %s, %s/%s, %d CPUs, sqlite-vec %s, %d reps, %s sizes, %s\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), engine.VecVersion, *reps, map[bool]string{true: "full", false: "quick"}[*full], time.Since(start).Round(time.Second))
	bench.Print(env.Stdout, results)
	if slices.ContainsFunc(results, func(r bench.Result) bool { return r.ID == "12" && r.Err == nil }) {
		if v, err := bench.CgoEngineVersion(ctx); err == nil {
			fmt.Fprintf(env.Stdout, "\n#12 baseline: %s; ours: %s, SQLite %s, sqlite-vec %s\n", v, engine.Name, engine.SQLiteVersion, engine.VecVersion)
		}
	}
	for _, res := range results {
		if res.Err != nil && !errors.Is(res.Err, bench.ErrUnavailable) {
			return fmt.Errorf("bench: %s: %w", res.Name, res.Err)
		}
	}
	return nil
}

// runOnlineRebuildBench runs the online rebuild scenario and prints its
// report.
func runOnlineRebuildBench(ctx context.Context, env *cli.Env, log *slog.Logger, rows, rate int, offlineWriters bool) error {
	defer bench.RemoveBinary()
	dir, err := os.MkdirTemp("", "indexer-bench-online-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	rep, err := bench.RunOnlineRebuild(ctx, dir, rows, rate, offlineWriters, func(format string, a ...any) {
		log.Info(fmt.Sprintf(format, a...))
	})
	if err != nil {
		return fmt.Errorf("bench: online rebuild: %w", err)
	}
	fmt.Fprintf(env.Stdout, "outboxindexer bench — %s, %s/%s, %d CPUs (%s), %s, %s\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), bench.CPUModel(), engine.Name, time.Since(start).Round(time.Second))
	fmt.Fprint(env.Stdout, rep.String())
	return nil
}
