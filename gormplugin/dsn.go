package gormplugin

import "github.com/outboxindexer/outboxindexer/internal/engine"

// DSN turns a database file path into the connection string this project
// recommends and tests with, for gormlite.Open:
//
//	db, err := gorm.Open(gormlite.Open(gormplugin.DSN("app.db")), &gorm.Config{})
//
// It sets WAL journaling (readers never block the writer, and queries see the
// old sidecars while a Rebuild runs), a busy timeout (once a DSN has any
// _pragma the driver adds none of its own), synchronous=NORMAL, and
// _txlock=immediate so that every transaction takes the write lock when it
// begins: writers then queue on the busy timeout instead of failing with
// SQLITE_BUSY when a read transaction tries to upgrade. It also turns on
// recursive_triggers: without it SQLite deletes the rows a REPLACE conflict
// resolution removes without firing DELETE triggers, and the capture
// triggers would miss them (add _pragma=recursive_triggers(1) to a DSN of
// your own). A string that already starts with "file:" is returned unchanged.
func DSN(path string) string { return engine.DSN(path) }
