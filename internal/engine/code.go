package engine

import "strings"

// Code is an SQLite primary result code (https://sqlite.org/rescode.html),
// the same number on every engine.
type Code int

// The primary result codes callers of this module test for.
const (
	CodeError    Code = 1  // SQLITE_ERROR: generic error (bad SQL, constraint in a virtual table, …)
	CodeBusy     Code = 5  // SQLITE_BUSY
	CodeLocked   Code = 6  // SQLITE_LOCKED
	CodeReadOnly Code = 8  // SQLITE_READONLY
	CodeIOErr    Code = 10 // SQLITE_IOERR
	CodeFull     Code = 13 // SQLITE_FULL
	CodeCantOpen Code = 14 // SQLITE_CANTOPEN
	CodeProtocol Code = 15 // SQLITE_PROTOCOL
	CodeNoLFS    Code = 22 // SQLITE_NOLFS
)

// ErrorCode returns the primary SQLite result code of err (or of an error it
// wraps) as reported by the engine's driver, and false when err carries none.
func ErrorCode(err error) (Code, bool) { return code(err) }

// vecChunkFailure is how sqlite-vec v0.1.6 reports that it could not add a
// chunk to a vec0 table's shadow tables: as a generic SQLITE_ERROR, losing
// the cause, which is a full disk, an I/O error or a read-only file —
// conditions to retry, not reasons to park the events.
const vecChunkFailure = "Could not insert a new vector chunk"

// Transient reports whether err is worth retrying as is: the database was
// busy or locked, an I/O error occurred, the disk was full, the file could
// not be opened, or it could not be written for a passing reason (a WAL
// index or hot journal it could not lock or recover): conditions that clear
// by themselves or that an operator can clear. A read-only connection
// (ReadOnly) is not among them.
func Transient(err error) bool {
	c, ok := code(err)
	if !ok {
		return false
	}
	switch c {
	case CodeReadOnly:
		return !ReadOnly(err)
	case CodeBusy, CodeLocked, CodeIOErr, CodeFull, CodeCantOpen, CodeProtocol, CodeNoLFS:
		return true
	case CodeError:
		return strings.Contains(err.Error(), vecChunkFailure)
	}
	return false
}

// ReadOnly reports whether err is SQLite's plain SQLITE_READONLY, which
// means the connection itself cannot write: it was opened with mode=ro or
// immutable=1, or on a file the process may not write. Retrying on the same
// connection cannot succeed (only the extended SQLITE_READONLY_* codes are
// passing conditions), and database/sql keeps its connections open.
func ReadOnly(err error) bool {
	c, ok := extendedCode(err)
	return ok && c == int(CodeReadOnly)
}

// IsVecChunkFailure reports whether err is sqlite-vec failing to add a chunk
// to a vec0 table (see Transient).
func IsVecChunkFailure(err error) bool {
	return err != nil && strings.Contains(err.Error(), vecChunkFailure)
}
