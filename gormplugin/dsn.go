package gormplugin

import "github.com/outboxindexer/outboxindexer/internal/engine"

// DSN turns a database file path into the connection string this project
// recommends and tests with, spelled for the engine the build uses:
//
//	db, err := gorm.Open(gormlite.Open(gormplugin.DSN("app.db")), &gorm.Config{})   // default: ncruces/go-sqlite3
//	db, err := gorm.Open(sqlite.Open(gormplugin.DSN("app.db")), &gorm.Config{})     // -tags outboxindexer_cgo,sqlite_fts5: gorm.io/driver/sqlite
//
// It sets WAL journaling (readers never block the writer, and queries see the
// old sidecars while a Rebuild runs), an explicit busy timeout,
// synchronous=NORMAL, and _txlock=immediate so that every transaction takes
// the write lock when it begins: writers then queue on the busy timeout
// instead of failing with SQLITE_BUSY when a read transaction tries to
// upgrade. It also turns on recursive_triggers: without it SQLite deletes
// the rows a REPLACE conflict resolution removes without firing DELETE
// triggers, and the capture triggers would miss them (with a DSN of your
// own, add _pragma=recursive_triggers(1), or _recursive_triggers=1 on the
// cgo engine). A string that already starts with "file:" is returned
// unchanged.
func DSN(path string) string { return engine.DSN(path) }
