package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/internal/engine"
)

// binary is the indexer built once for this test process by TestMain; the
// tests drive it as a subprocess, like an operator would.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "indexer-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "indexer")
	// The binary runs on the engine this test binary was built for.
	args := []string{"build", "-tags", engine.BuildTags, "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// result is what a finished subprocess left behind.
type result struct {
	code           int
	stdout, stderr string
}

// cmd prepares the binary with args and a clean environment (no INDEXER_*
// variables from the caller's shell).
func cmd(ctx context.Context, env []string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, binary, args...)
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		// A race-built binary sleeps a second at exit by default; a data race
		// makes it exit 66, which fails the test's exit-code check.
		"GORACE=atexit_sleep_ms=0 halt_on_error=1"}
	c.Env = append(c.Env, env...)
	return c
}

// run runs the binary to completion.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	c := cmd(t.Context(), env, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "run %v: %v", args, err)
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func TestHelpListsEveryCommand(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "help")
	require.Equal(t, 0, r.code, r.stderr)
	for _, c := range commands() {
		require.Contains(t, r.stdout, "  "+c.Name+" ")
	}
	r = run(t, nil, "--help")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "Usage: indexer <command> [flags]")
}

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		r := run(t, nil, c.Name, "--help")
		require.Equal(t, 0, r.code, "%s --help: %s", c.Name, r.stderr)
		require.Contains(t, r.stdout, "Usage: indexer "+c.Name, c.Name)
		require.Empty(t, r.stderr, c.Name)
		// `indexer help <command>` says the same.
		r2 := run(t, nil, "help", c.Name)
		require.Equal(t, 0, r2.code)
		require.Equal(t, r.stdout, r2.stdout)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"help", "frobnicate"},
		{"version", "--bogus"},
		{"version", "extra"},
	} {
		r := run(t, nil, args...)
		require.Equal(t, 2, r.code, "%v: stdout %q stderr %q", args, r.stdout, r.stderr)
		require.NotEmpty(t, r.stderr, "%v", args)
		require.Empty(t, r.stdout, "%v", args)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "version")
	require.Equal(t, 0, r.code, r.stderr)
	require.True(t, strings.HasPrefix(r.stdout, "indexer "), r.stdout)
	require.Contains(t, r.stdout, "sqlite-vec v0.1.6")
}

// proc is a running subprocess whose stderr is read line by line.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	lines  chan string // stderr lines, as they come (dropped when nobody reads)
	done   chan struct{}

	mu     sync.Mutex
	stderr strings.Builder
}

// start starts the binary with args; it is killed at the end of the test if
// still running.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: cmd(context.Background(), env, args...), lines: make(chan string, 4096), done: make(chan struct{})}
	p.cmd.Stdout = &p.stdout
	pipe, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.done)
		defer close(p.lines)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- line:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
			_ = p.cmd.Wait()
		}
	})
	return p
}

// waitLog reads stderr JSON log lines (--log-format json) until one has
// msg; it returns that record. It fails if the process ends first.
func (p *proc) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	return p.waitLogWhere(t, msg, func(map[string]any) bool { return true })
}

// waitLogWhere is waitLog for the first record with msg that satisfies ok.
func (p *proc) waitLogWhere(t *testing.T, msg string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("process ended before logging %q; stderr:\n%s", msg, p.errText())
			}
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg && match(rec) {
				return rec
			}
		case <-t.Context().Done():
			t.Fatalf("test ended before %q was logged; stderr:\n%s", msg, p.errText())
		}
	}
}

func (p *proc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// wait waits for the process to exit and returns its result.
func (p *proc) wait(t *testing.T) result {
	t.Helper()
	<-p.done // stderr fully read
	err := p.cmd.Wait()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "wait: %v", err)
		code = ee.ExitCode()
	}
	return result{code: code, stdout: p.stdout.String(), stderr: p.errText()}
}
