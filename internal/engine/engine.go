// Package engine pins the SQLite engine every package of this module runs on:
// the ncruces/go-sqlite3 Wasm driver with the sqlite-vec build embedded by
// sqlite-vec-go-bindings, the connection string the project recommends, and a
// check that the engine has what the sidecars need.
package engine

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	// Embeds SQLite 3.47.0 with sqlite-vec v0.1.6 and FTS5 into the driver.
	_ "github.com/asg017/sqlite-vec-go-bindings/ncruces"
)

// VecVersion is the sqlite-vec version this module is built and tested with.
const VecVersion = "v0.1.6"

// SQLiteVersion is the SQLite version that sqlite-vec's Wasm build embeds.
const SQLiteVersion = "3.47.0"

// DefaultBusyTimeoutMS is the busy timeout DSN puts in every connection
// string. Once a DSN has any _pragma the driver no longer adds its own default
// busy timeout, so it must always be explicit.
const DefaultBusyTimeoutMS = 10000

// DSN turns a database path (or an existing "file:" DSN, returned unchanged)
// into the connection string the project recommends: WAL journal, a busy
// timeout, synchronous=NORMAL, recursive_triggers (so that the rows a REPLACE
// conflict resolution deletes fire the capture triggers' DELETE trigger), and
// BEGIN IMMEDIATE for every transaction so that writers queue on the busy
// timeout instead of failing with SQLITE_BUSY when a read transaction tries
// to upgrade.
func DSN(path string) string {
	if strings.HasPrefix(path, "file:") {
		return path
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultBusyTimeoutMS))
	q.Add("_pragma", "journal_mode(wal)")
	q.Add("_pragma", "synchronous(normal)")
	q.Add("_pragma", "recursive_triggers(1)")
	q.Add("_txlock", "immediate")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Check verifies that the connected engine has sqlite-vec VecVersion and
// FTS5.
func Check(ctx context.Context, db *sql.DB) error {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT vec_version()").Scan(&v); err != nil {
		return fmt.Errorf("engine: sqlite-vec is missing: %w", err)
	}
	if v != VecVersion {
		return fmt.Errorf("engine: sqlite-vec %s, want %s", v, VecVersion)
	}
	var fts int
	if err := db.QueryRowContext(ctx, "SELECT sqlite_compileoption_used('ENABLE_FTS5')").Scan(&fts); err != nil || fts != 1 {
		return fmt.Errorf("engine: FTS5 is missing (compile option %d): %v", fts, err)
	}
	return nil
}
