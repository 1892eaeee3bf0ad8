// Command indexer applies the outbox of a SQLite database prepared by
// gormplugin.Migrate to its sqlite-vec and FTS5 sidecars. It knows no Go model
// types: everything it needs is in the database's registry, so it works on
// any application's database.
//
//	indexer demo                      # try it: a sample database, indexed and queried
//	indexer run    --db app.db        # the daemon: apply events as they commit
//	indexer drain  --db app.db        # apply what is pending, then exit
//	indexer status --db app.db --json # positions, lag, per-table counts
//
// Run `indexer help` for every command and `indexer <command> --help` for its
// flags. Exit codes: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
)

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], cli.OSEnv()))
}

// commands lists the subcommands in the order `indexer help` shows them.
func commands() []cli.Command {
	return []cli.Command{
		runCommand,
		drainCommand,
		rebuildCommand,
		replayCommand,
		statusCommand,
		deadlettersCommand,
		demoCommand,
		benchCommand,
		versionCommand,
	}
}

// Main runs the binary with args (without the program name) and returns the
// exit code. SIGINT and SIGTERM cancel the command's context; a second
// signal kills the process.
func Main(ctx context.Context, args []string, env *cli.Env) int {
	if len(args) == 0 {
		usage(env.Stderr)
		return cli.ExitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			if c, ok := lookup(args[1]); ok {
				return cli.ExitCode(c.Run(ctx, env, []string{"--help"}))
			}
			fmt.Fprintf(env.Stderr, "indexer: unknown command %q\n\n", args[1])
			usage(env.Stderr)
			return cli.ExitUsage
		}
		usage(env.Stdout)
		return cli.ExitOK
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(env.Stderr, "indexer: unknown command %q\n\n", name)
		usage(env.Stderr)
		return cli.ExitUsage
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal gets the default behaviour: exit now
	}()

	err := cmd.Run(ctx, env, args[1:])
	if err != nil && cmd.Interruptible && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return cli.ExitOK // stopped by a signal: the command has already reported its state
	}
	cli.Report(env.Stderr, cmd.Name, err)
	return cli.ExitCode(err)
}

func lookup(name string) (cli.Command, bool) {
	for _, c := range commands() {
		if c.Name == name {
			return c, true
		}
	}
	return cli.Command{}, false
}

func usage(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprint(w, `indexer applies the outbox of a SQLite database prepared by gormplugin.Migrate
to its sqlite-vec (vec0) and FTS5 sidecar tables.

Usage: indexer <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, `
Run "indexer <command> --help" for a command's flags.

Every command that opens a database takes --db (a file path or a SQLite
"file:" URI; env %s). The file must exist: the binary never creates one,
except "demo". Logs go to stderr (--log-format text|json, --log-level).
Exit codes: 0 success, 1 failure, 2 usage error.
`, cli.EnvDB)
}
