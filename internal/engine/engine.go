// Package engine owns the SQLite engine every package of this module runs on:
// the driver (by default ncruces/go-sqlite3, SQLite translated from Wasm to
// Go, no cgo and no JIT), the extensions registered on every connection it
// opens (FTS5 and sqlite-vec), the connection string the project recommends,
// the check that an open database has what the sidecars need, and the
// classification of the driver's errors (Transient, ReadOnly). No other
// package of the module imports the driver.
package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultBusyTimeoutMS is the busy timeout DSN puts in every connection
// string.
const DefaultBusyTimeoutMS = 10000

// ErrMissingExtension reports that an open database lacks sqlite-vec or FTS5
// (or has another sqlite-vec version than VecVersion).
var ErrMissingExtension = errors.New("engine: extension missing")

// DSN turns a database path (or an existing "file:" DSN, returned unchanged)
// into the connection string the project recommends, in the spelling of the
// engine's driver: WAL journal, a busy timeout, synchronous=NORMAL,
// recursive_triggers (so that the rows a REPLACE conflict resolution deletes
// fire the capture triggers' DELETE trigger), and
// BEGIN IMMEDIATE for every transaction so that writers queue on the busy
// timeout instead of failing with SQLITE_BUSY when a read transaction tries
// to upgrade.
func DSN(path string, settings ...Setting) string {
	if strings.HasPrefix(path, "file:") {
		return path
	}
	q := url.Values{}
	for _, kv := range dsnQuery() {
		q.Add(kv[0], kv[1])
	}
	for _, s := range settings {
		if s == ForeignKeys {
			k, v := foreignKeysParam()
			q.Add(k, v)
		}
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Setting is an optional connection setting of DSN.
type Setting int

// Optional DSN settings.
const (
	// ForeignKeys turns foreign-key enforcement on for every connection, so
	// that ON DELETE/UPDATE actions run (and the capture triggers of the
	// child tables see the rows they change).
	ForeignKeys Setting = iota + 1
)

// EnsureBusyTimeout adds the default busy timeout (DefaultBusyTimeoutMS) to
// the query parameters of a "file:" DSN unless they set one already, in the
// spelling of the engine's driver.
func EnsureBusyTimeout(q url.Values) {
	if _, ok := BusyTimeoutMS(q); ok {
		return
	}
	k, v := BusyTimeoutParam(DefaultBusyTimeoutMS)
	q.Add(k, v)
}

// BusyTimeoutMS returns the busy timeout, in milliseconds, that the query
// parameters of a DSN set for the engine's driver, and false when they set
// none.
func BusyTimeoutMS(q url.Values) (int, bool) {
	for k, vs := range q {
		for _, v := range vs {
			if ms, ok := busyTimeout(k, v); ok {
				return ms, true
			}
		}
	}
	return 0, false
}

// Check verifies that the connected engine has sqlite-vec VecVersion and
// FTS5. FTS5 is probed through its fts5() function (compile options no longer
// tell: the default engine links FTS5 as an extension per connection). Both
// failures wrap ErrMissingExtension.
func Check(ctx context.Context, db *sql.DB) error {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT vec_version()").Scan(&v); err != nil {
		return fmt.Errorf("%w: sqlite-vec: %w", ErrMissingExtension, err)
	}
	if v != VecVersion {
		return fmt.Errorf("%w: sqlite-vec %s, want %s", ErrMissingExtension, v, VecVersion)
	}
	// fts5(?1) is FTS5's own function returning its API pointer; it exists
	// exactly when the fts5 module is registered on the connection.
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pragma_function_list WHERE name = 'fts5'").Scan(&n); err != nil {
		return fmt.Errorf("%w: FTS5: %w", ErrMissingExtension, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: FTS5 (no fts5 function)", ErrMissingExtension)
	}
	return nil
}
