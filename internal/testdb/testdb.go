// Package testdb opens real SQLite database files in a test's temp dir with
// the project's recommended connection string.
package testdb

import (
	"path/filepath"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Path returns a fresh database path in t's temp dir.
func Path(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "test.db")
}

// Open opens (creating) the database at path with gorm and the recommended
// DSN, with gorm's logger silenced, and closes it at the end of the test.
func Open(t testing.TB, path string, cfg ...*gorm.Config) *gorm.DB {
	t.Helper()
	c := &gorm.Config{Logger: logger.Default.LogMode(logger.Silent)}
	if len(cfg) > 0 && cfg[0] != nil {
		c = cfg[0]
		if c.Logger == nil {
			c.Logger = logger.Default.LogMode(logger.Silent)
		}
	}
	db, err := gorm.Open(engine.Dialector(engine.DSN(path)), c)
	if err != nil {
		t.Fatalf("testdb: open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

// New opens a fresh database in t's temp dir.
func New(t testing.TB, cfg ...*gorm.Config) *gorm.DB {
	t.Helper()
	return Open(t, Path(t), cfg...)
}
