// Command enginecgo runs one engine workload of internal/bench/limits on
// mattn/go-sqlite3 with sqlite-vec linked through cgo, and prints its
// figure on one line. It is the other side of the engine-context lines
// (target 12) of `indexer bench`, which builds and runs it; the same code
// runs in-process on this product's Wasm engine.
//
// It is a module of its own, so that the product's build, tests and
// binaries stay free of cgo and of a second SQLite driver (both drivers
// register as "sqlite3", so they cannot share a binary).
//
// Usage:
//
//	go build -tags sqlite_fts5 -o enginecgo .
//	enginecgo -workload index -n 5000 -dir /tmp/x
//	enginecgo -version
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	sqlitevec "github.com/asg017/sqlite-vec-go-bindings/cgo"
	_ "github.com/mattn/go-sqlite3"
	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench/limits"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "enginecgo:", err)
		os.Exit(1)
	}
}

func run() error {
	workload := flag.String("workload", "", "the limits.EngineWorkloads ID to run")
	n := flag.Int("n", 5000, "documents")
	dir := flag.String("dir", "", "directory of the database file (default: a temporary one)")
	version := flag.Bool("version", false, "print the SQLite and sqlite-vec versions and exit")
	flag.Parse()

	sqlitevec.Auto()
	if *dir == "" {
		d, err := os.MkdirTemp("", "enginecgo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	db, err := sql.Open("sqlite3", dsn(filepath.Join(*dir, "bench.db")))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if *version {
		var s, v string
		var fts int
		if err := db.QueryRowContext(ctx, "SELECT sqlite_version(), vec_version(), sqlite_compileoption_used('ENABLE_FTS5')").Scan(&s, &v, &fts); err != nil {
			return err
		}
		if fts != 1 {
			return fmt.Errorf("FTS5 is not compiled in: build with -tags sqlite_fts5")
		}
		fmt.Printf("mattn/go-sqlite3 (cgo), SQLite %s, sqlite-vec %s\n", s, v)
		return nil
	}
	w, ok := limits.LookupWorkload(*workload)
	if !ok {
		return fmt.Errorf("unknown -workload %q", *workload)
	}
	v, err := w.Run(ctx, db, *n)
	if err != nil {
		return fmt.Errorf("%s: %w", w.ID, err)
	}
	fmt.Println(v)
	return nil
}

// dsn gives the connection the settings of this product's recommended DSN
// (internal/engine.DSN): WAL, synchronous=NORMAL, a busy timeout and
// BEGIN IMMEDIATE.
func dsn(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}
