package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench/limits"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dim is the vector size of every workload.
const Dim = limits.Dim

// BodyWords is the length of a synthetic document body.
const BodyWords = limits.BodyWords

// Doc is one synthetic document (limits.Doc).
type Doc = limits.Doc

// Docs returns n deterministic documents (limits.Docs).
func Docs(n int) []Doc { return limits.Docs(n) }

// Open opens a database file in dir with the recommended DSN.
func Open(dir string) (*gorm.DB, error) {
	dsn := engine.DSN(filepath.Join(dir, "bench.db"))
	// Extra DSN parameters for experiments, e.g.
	// OI_BENCH_DSN_EXTRA='_pragma=wal_autocheckpoint(0)' (docs/PERFORMANCE.md).
	if x := os.Getenv("OI_BENCH_DSN_EXTRA"); x != "" {
		dsn += "&" + x
	}
	db, err := gorm.Open(engine.Dialector(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("bench: open: %w", err)
	}
	return db, nil
}

// Close closes db's pool.
func Close(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		s.Close()
	}
}

// exec runs statements on db's pool, stopping at the first error
// (limits.Exec).
func exec(ctx context.Context, db *gorm.DB, stmts ...string) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return limits.Exec(ctx, sqlDB, stmts...)
}
