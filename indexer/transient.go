package indexer

import (
	"errors"

	"github.com/ncruces/go-sqlite3"
)

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
	}
	return false
}
