package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/internal/engine"
)

// Subprocess workloads (issue 7, targets 9 and 11) run the indexer binary
// on a database prepared in-process: start-up time of `indexer status`
// (the engine is plain Go code: there is nothing to compile or cache at
// start-up), and peak RSS of `indexer drain` and `indexer rebuild`.

// IndexerModule is the import path of the indexer binary.
const IndexerModule = "github.com/outboxindexer/outboxindexer/cmd/indexer"

// builtBinary is a program built once per process into a temporary
// directory.
type builtBinary struct {
	sync.Mutex
	path string
	err  error
}

var built, builtCgo builtBinary

// get returns the binary, building it with build (given a fresh directory
// to write it into) on first use. A failed build is not retried.
func (b *builtBinary) get(build func(dir string) (string, error)) (string, error) {
	b.Lock()
	defer b.Unlock()
	if b.path != "" || b.err != nil {
		return b.path, b.err
	}
	dir, err := os.MkdirTemp("", "oi-bench-bin-")
	if err != nil {
		b.err = err
		return "", err
	}
	b.path, b.err = build(dir)
	if b.err != nil {
		os.RemoveAll(dir)
		b.path = ""
	}
	return b.path, b.err
}

// remove deletes the binary, if one was built.
func (b *builtBinary) remove() {
	b.Lock()
	defer b.Unlock()
	if b.path != "" {
		os.RemoveAll(filepath.Dir(b.path))
	}
	b.path, b.err = "", nil
}

// IndexerBinary returns the path of an indexer binary: $OI_BENCH_INDEXER
// when set, else one built once per process with `go build` (from within
// the module) into a temporary directory, which RemoveBinary deletes.
func IndexerBinary(ctx context.Context) (string, error) {
	if p := os.Getenv("OI_BENCH_INDEXER"); p != "" {
		return p, nil
	}
	return built.get(func(dir string) (string, error) {
		bin := filepath.Join(dir, "indexer")
		cmd := osexec.CommandContext(ctx, "go", "build", "-tags", engine.BuildTags, "-o", bin, IndexerModule)
		cmd.Dir = moduleDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("bench: go build %s: %w\n%s", IndexerModule, err, out)
		}
		return bin, nil
	})
}

// moduleDir returns the module's root as this source file knows it (when
// the sources are there), else "" (the current directory).
func moduleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return ""
	}
	return dir
}

// RemoveBinary deletes the binary IndexerBinary built, if any.
func RemoveBinary() {
	if os.Getenv("OI_BENCH_INDEXER") == "" {
		built.remove()
	}
}

// procResult is a finished subprocess: wall time and peak RSS.
type procResult struct {
	wall   time.Duration
	maxRSS int64  // bytes (VmHWM), when asked for
	out    string // what it wrote on stdout and stderr
}

// rssPoll is how often runIndexer samples the child's VmHWM.
const rssPoll = 2 * time.Millisecond

// runIndexer runs the indexer binary with args and returns its wall time
// and, with rss, its peak resident set size: the kernel's VmHWM of the
// child, sampled from /proc/<pid>/status every rssPoll while it runs
// (VmHWM only grows, so only a peak in the child's last ~2 ms could be
// missed). The child's rusage cannot be used: Go starts children with
// vfork, and Linux then records the parent's high-water mark in the
// child's ru_maxrss.
func runIndexer(ctx context.Context, bin string, rss bool, args ...string) (procResult, error) {
	cmd := osexec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return procResult{}, fmt.Errorf("bench: indexer %v: %w", args, err)
	}
	var peak int64
	done := make(chan struct{})
	polled := make(chan struct{})
	if rss {
		go func() {
			defer close(polled)
			status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
			t := time.NewTicker(rssPoll)
			defer t.Stop()
			for {
				if v, ok := vmHWM(status); ok {
					peak = max(peak, v)
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
	} else {
		close(polled)
	}
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	<-polled
	if err != nil {
		return procResult{}, fmt.Errorf("bench: indexer %v: %w\n%s", args, err, out.Bytes())
	}
	if rss && peak == 0 {
		return procResult{}, fmt.Errorf("bench: indexer %v: no VmHWM read from /proc", args)
	}
	return procResult{wall: wall, maxRSS: peak, out: out.String()}, nil
}

// vmHWM reads the VmHWM line of a /proc/<pid>/status file, in bytes.
func vmHWM(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

// statusDB prepares a small indexed database in dir for `indexer status`.
func statusDB(ctx context.Context, dir string, n int) (string, error) {
	db, err := loadPending(ctx, dir, n)
	if err != nil {
		return "", err
	}
	defer Close(db)
	if err := drainAll(ctx, db, n); err != nil {
		return "", err
	}
	return filepath.Join(dir, "bench.db"), nil
}

// StartupRuns is how many processes one start-up repetition times (the
// median is reported).
const StartupRuns = 5

// IndexerStatus is target 11: wall time of `indexer status` on a database of
// n indexed rows, from process start to exit: start-up, opening the database
// with its extensions, the engine check and the status queries. It returns
// the median of StartupRuns processes, in ms.
func IndexerStatus(n int) Workload {
	return Workload{Name: "indexer status, process start to exit", Unit: "ms", Run: func(ctx context.Context, dir string) (float64, error) {
		bin, err := IndexerBinary(ctx)
		if err != nil {
			return 0, err
		}
		path, err := statusDB(ctx, dir, n)
		if err != nil {
			return 0, err
		}
		// One unmeasured run brings the binary and the database into the
		// page cache, as for any process started twice.
		if _, err := runIndexer(ctx, bin, false, "status", "--db", path); err != nil {
			return 0, err
		}
		ts := make([]float64, StartupRuns)
		for i := range ts {
			r, err := runIndexer(ctx, bin, false, "status", "--db", path)
			if err != nil {
				return 0, err
			}
			ts[i] = float64(r.wall.Microseconds()) / 1e3
		}
		slices.Sort(ts)
		return ts[len(ts)/2], nil
	}}
}

// Constant is a baseline that is a fixed figure (an absolute target), so
// that the ratio column reads as "fraction of the target".
func Constant(name, unit string, v float64) Workload {
	return Workload{Name: name, Unit: unit, Run: func(context.Context, string) (float64, error) { return v, nil }}
}

// StartupCases returns target 11's case: `indexer status`, process start to
// exit, against the 50 ms target (no cache of any kind exists any more).
func StartupCases() []Case {
	const n = 100
	return []Case{
		{ID: "11", Name: "start-up: indexer status vs 50 ms", Ours: IndexerStatus(n), Baseline: Constant("target: 50 ms", "ms", 50), Target: 1},
	}
}
