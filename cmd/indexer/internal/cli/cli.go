// Package cli holds the machinery shared by the subcommands of the indexer
// binary: the common flags (database, logging, compilation cache), exit
// codes, opening a database the binary knows no Go types for, progress
// reporting and the Prometheus metrics of `indexer run`.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes of the binary.
const (
	ExitOK      = 0 // success, or run/drain/rebuild/replay stopped by SIGINT/SIGTERM
	ExitFailure = 1 // the command failed
	ExitUsage   = 2 // bad flags, arguments or environment variables
)

// ErrUsage marks command-line mistakes; ExitCode maps it to ExitUsage.
var ErrUsage = errors.New("usage error")

// Usagef returns an error wrapping ErrUsage.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// ExitCode maps a command's error to the process exit code: nil and
// flag.ErrHelp are success, ErrUsage is a usage error, anything else a
// failure.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// Env is what a command may touch of its process, so that tests can run
// commands in-process with their own streams and environment.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// OSEnv returns the process's real streams and environment.
func OSEnv() *Env {
	return &Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Command is one subcommand of the binary.
type Command struct {
	Name    string // as typed: "drain"
	Summary string // one line for the command list
	// Interruptible commands treat a cancellation by SIGINT/SIGTERM as a
	// clean stop (exit 0); the others report it as a failure.
	Interruptible bool
	// Run parses args (everything after the command name) and runs.
	Run func(ctx context.Context, env *Env, args []string) error
}

// FlagSet returns a flag set for a subcommand that reports errors instead of
// exiting, prints `--help` to stdout and usage errors to stderr.
//
// usage is the argument synopsis after the command name ("[flags]"),
// description a paragraph shown under it.
func FlagSet(name, usage, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse prints nothing; ParseFlags reports
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: indexer %s %s\n\n", name, usage)
		if description != "" {
			fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(description))
		}
		fmt.Fprintln(w, "Flags:")
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags parses args into fs. On --help it prints the usage to stdout and
// returns flag.ErrHelp (exit 0); on a bad flag it prints the error and the
// usage to stderr and returns an ErrUsage error (exit 2). Positional
// arguments are refused unless allowArgs.
func ParseFlags(env *Env, fs *flag.FlagSet, args []string, allowArgs bool) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(env.Stdout)
		fs.Usage()
		return flag.ErrHelp
	}
	if err == nil && !allowArgs && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		fs.SetOutput(env.Stderr)
		fmt.Fprintf(env.Stderr, "indexer %s: %v\n", fs.Name(), err)
		fs.Usage()
		return reported{fmt.Errorf("%w: %v", ErrUsage, err)}
	}
	return nil
}

// reported marks an error already printed to stderr.
type reported struct{ error }

func (r reported) Unwrap() error { return r.error }

// Report prints a command's error to w, unless it is nil, a --help, or was
// already printed by ParseFlags.
func Report(w io.Writer, command string, err error) {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	var r reported
	if errors.As(err, &r) {
		return
	}
	if command == "" {
		fmt.Fprintf(w, "indexer: %v\n", err)
		return
	}
	fmt.Fprintf(w, "indexer %s: %v\n", command, err)
}

// StringsFlag is a repeatable string flag (--table a --table b); a value
// may also hold a comma-separated list.
type StringsFlag []string

// String implements flag.Value.
func (s *StringsFlag) String() string { return strings.Join(*s, ",") }

// Set implements flag.Value.
func (s *StringsFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			return fmt.Errorf("empty value in %q", v)
		}
		*s = append(*s, p)
	}
	return nil
}

var _ flag.Value = (*StringsFlag)(nil)
