package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench/limits"
	"github.com/outboxindexer/outboxindexer/internal/engine"
)

// Engine context (issue 7, target 12, report only): the raw limits of
// limits.EngineWorkloads on this product's pure-Go engine, in-process, against
// the same code on mattn/go-sqlite3 with sqlite-vec through cgo, run by the
// enginecgo program (its own module under internal/bench/enginecgo, built
// on first use with the go command and a C compiler).

// ErrUnavailable marks a measurement that cannot run on this machine (the
// cgo engine without a C compiler or the module's sources, say). The
// harness reports it and goes on.
var ErrUnavailable = errors.New("unavailable")

// CgoEngineModuleDir is the enginecgo module's directory, relative to the
// product's module root.
const CgoEngineModuleDir = "cmd/indexer/internal/bench/enginecgo"

// CgoEngineBinary returns the enginecgo program, built once per process
// with `go build -tags sqlite_fts5` (SQLite's amalgamation compiles in
// about a minute on 2 cores the first time; the go build cache keeps it).
// RemoveCgoEngine deletes it. The error wraps ErrUnavailable when the module's
// sources or a working cgo toolchain are missing.
func CgoEngineBinary(ctx context.Context) (string, error) {
	return builtCgo.get(func(dir string) (string, error) {
		root := moduleDir()
		if root == "" {
			return "", fmt.Errorf("bench: cgo engine: %w: the module's sources are not beside this binary (run `go run ./cmd/indexer bench` from the repository)", ErrUnavailable)
		}
		src := filepath.Join(root, CgoEngineModuleDir)
		bin := filepath.Join(dir, "enginecgo")
		cmd := osexec.CommandContext(ctx, "go", "build", "-tags", "sqlite_fts5", "-o", bin, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("bench: cgo engine: %w: go build in %s: %v\n%s", ErrUnavailable, src, err, out)
		}
		return bin, nil
	})
}

// RemoveCgoEngine deletes the binary CgoEngineBinary built, if any.
func RemoveCgoEngine() { builtCgo.remove() }

// CgoEngineVersion returns what the enginecgo program links: driver,
// SQLite and sqlite-vec versions.
func CgoEngineVersion(ctx context.Context) (string, error) {
	bin, err := CgoEngineBinary(ctx)
	if err != nil {
		return "", err
	}
	out, err := osexec.CommandContext(ctx, bin, "-version").Output()
	if err != nil {
		return "", fmt.Errorf("bench: cgo engine -version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// EngineCases returns target 12's report-only lines on n documents: each
// engine workload on the pure-Go engine ("ours") against the cgo engine
// ("baseline"), so the ratio is what the pure-Go engine costs.
func EngineCases(n int) []Case {
	var cs []Case
	for _, w := range limits.EngineWorkloads() {
		dir := LowerIsBetter
		if w.HigherIsBetter {
			dir = HigherIsBetter
		}
		cs = append(cs, Case{
			ID:        "12",
			Name:      fmt.Sprintf("engine: %s, %d rows: pure Go vs cgo", w.Title, w.Rows(n)),
			Ours:      ownEngine(w, n),
			Baseline:  cgoEngine(w, n),
			Direction: dir,
		})
	}
	return cs
}

// ownEngine runs w in-process on the engine this build uses.
func ownEngine(w limits.Workload, n int) Workload {
	return Workload{Name: engine.Name + ": " + w.ID, Unit: w.Unit, Run: func(ctx context.Context, dir string) (float64, error) {
		return withSQL(dir, func(db *sql.DB) (float64, error) { return w.Run(ctx, db, n) })
	}}
}

// cgoEngine runs w in the enginecgo program.
func cgoEngine(w limits.Workload, n int) Workload {
	return Workload{Name: "cgo engine (mattn/go-sqlite3): " + w.ID, Unit: w.Unit, Run: func(ctx context.Context, dir string) (float64, error) {
		bin, err := CgoEngineBinary(ctx)
		if err != nil {
			return 0, err
		}
		cmd := osexec.CommandContext(ctx, bin, "-workload", w.ID, "-n", strconv.Itoa(n), "-dir", dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return 0, fmt.Errorf("bench: enginecgo -workload %s: %w: %s", w.ID, err, strings.TrimSpace(stderr.String()))
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			return 0, fmt.Errorf("bench: enginecgo -workload %s printed %q: %w", w.ID, out, err)
		}
		return v, nil
	}}
}
