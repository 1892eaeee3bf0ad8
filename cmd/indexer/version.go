package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/internal/engine"
)

var versionCommand = cli.Command{
	Name:    "version",
	Summary: "print the build's version, Go version and sqlite-vec version",
	Run:     runVersion,
}

func runVersion(_ context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("version", "", "Print the version of this build.")
	if err := cli.ParseFlags(env, fs, args, false); err != nil {
		return err
	}
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	fmt.Fprintf(env.Stdout, "indexer %s %s sqlite-vec %s %s/%s\n", version, runtime.Version(), engine.VecVersion, runtime.GOOS, runtime.GOARCH)
	return nil
}
