package indexer

import "github.com/outboxindexer/outboxindexer/internal/engine"

// transient reports whether err is worth retrying as is (engine.Transient):
// busy, locked, I/O errors, a full disk, a file that could not be opened or
// written for a passing reason. A read-only connection (readOnly) is not
// among them.
func transient(err error) bool { return engine.Transient(err) }

// readOnly reports whether err is SQLite's plain SQLITE_READONLY: the
// connection itself cannot write (engine.ReadOnly).
func readOnly(err error) bool { return engine.ReadOnly(err) }
