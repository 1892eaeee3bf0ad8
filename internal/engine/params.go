package engine

import (
	"errors"
	"net/url"
)

// ErrUnsupported reports a connection setting the engine's driver cannot
// take in a DSN.
var ErrUnsupported = errors.New("engine: not supported by this engine's driver")

// Params are connection settings spelled into a DSN by DSNWith, for callers
// (tests, mostly) that need other settings than DSN's.
type Params struct {
	BusyTimeoutMS int      // busy timeout; 0 means none (SQLITE_BUSY at once)
	JournalMode   string   // "wal", "delete", …; "" keeps SQLite's default
	TxLock        string   // "deferred", "immediate" or "exclusive"; "" keeps the driver's default
	Pragmas       []string // further PRAGMAs for every connection, e.g. "max_page_count(100)"
}

// DSNWith returns a "file:" DSN for path with exactly the settings p, in the
// spelling of the engine's driver. It fails with ErrUnsupported when the
// driver cannot carry one of them (the cgo engine takes no arbitrary
// Pragmas).
func DSNWith(path string, p Params) (string, error) {
	q, err := dsnParams(p)
	if err != nil {
		return "", err
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode(), nil
}
