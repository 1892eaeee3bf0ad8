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
func DSN(path string, opts ...DSNOption) string {
	var settings []engine.Setting
	for _, o := range opts {
		settings = append(settings, engine.Setting(o))
	}
	return engine.DSN(path, settings...)
}

// DSNOption is an optional setting of DSN.
type DSNOption engine.Setting

// WithForeignKeys turns foreign-key enforcement on in DSN (SQLite leaves it
// off unless asked), so that ON DELETE CASCADE, SET NULL and ON UPDATE
// CASCADE run; the capture triggers of the child tables then see the rows
// they change.
func WithForeignKeys() DSNOption { return DSNOption(engine.ForeignKeys) }
