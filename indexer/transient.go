package indexer

import (
	"errors"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// vecChunkFailure is how sqlite-vec v0.1.6 reports that it could not add a
// chunk to a vec0 table's shadow tables: as a generic SQLITE_ERROR, losing
// the cause, which is a full disk, an I/O error or a read-only file —
// conditions to retry, not reasons to park the events.
const vecChunkFailure = "Could not insert a new vector chunk"

// transient reports whether err is worth retrying as is: the database was
// busy or locked, an I/O error occurred, the disk was full, the file could
// not be opened, or it could not be written for a passing reason (a WAL
// index or hot journal it could not lock or recover): conditions that clear
// by themselves or that an operator can clear. A read-only connection
// (readOnly) is not among them.
func transient(err error) bool {
	var code sqlite3.ErrorCode
	if !errors.As(err, &code) {
		return false
	}
	switch code {
	case sqlite3.READONLY:
		return !readOnly(err)
	case sqlite3.BUSY, sqlite3.LOCKED, sqlite3.IOERR, sqlite3.FULL, sqlite3.CANTOPEN, sqlite3.PROTOCOL, sqlite3.NOLFS:
		return true
	case sqlite3.ERROR:
		return strings.Contains(err.Error(), vecChunkFailure)
	}
	return false
}

// readOnly reports whether err is SQLite's plain SQLITE_READONLY, which
// means the connection itself cannot write: it was opened with mode=ro or
// immutable=1, or on a file the process may not write. Retrying on the same
// connection cannot succeed (only the extended SQLITE_READONLY_* codes are
// passing conditions), and database/sql keeps its connections open.
func readOnly(err error) bool {
	var code sqlite3.ExtendedErrorCode
	return errors.As(err, &code) && code == sqlite3.ExtendedErrorCode(sqlite3.READONLY)
}
