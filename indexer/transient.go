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
// busy or locked, an I/O error occurred, the disk was full, or the file was
// read-only or could not be opened (conditions an operator can clear).
func transient(err error) bool {
	var code sqlite3.ErrorCode
	if !errors.As(err, &code) {
		return false
	}
	switch code {
	case sqlite3.BUSY, sqlite3.LOCKED, sqlite3.IOERR, sqlite3.FULL, sqlite3.READONLY, sqlite3.CANTOPEN, sqlite3.PROTOCOL, sqlite3.NOLFS:
		return true
	case sqlite3.ERROR:
		return strings.Contains(err.Error(), vecChunkFailure)
	}
	return false
}
