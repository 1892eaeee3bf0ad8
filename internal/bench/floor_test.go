package bench

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// The physical floor of target 1: what any outbox row costs on this engine,
// whatever the plugin does. Each committed single-row create writes every
// page it touched to the WAL (one frame per page, two pwrite calls per
// frame); the outbox row adds its table's leaf page to the source row's
// pages (and, with the (tbl, key, id) index schema version 1 had, that
// index's leaf).

// floorArticle is Article's source row without the plugin.
type floorArticle struct {
	ID    uint `gorm:"primaryKey"`
	Title string
	Body  string
	Views int
}

// stepNaiveOutbox creates floorArticle rows and appends each row's event
// from a plain gorm callback, in the create's transaction, with a statement
// prepared once: the least any capture can do. index=true adds the
// (tbl, key, id) index that schema version 1 had, for comparison.
func stepNaiveOutbox(index bool) Stepper {
	return Stepper{Name: "naive outbox", Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
		db, err := Open(dir)
		if err != nil {
			return nil, nil, err
		}
		sqlDB, err := db.DB()
		if err == nil {
			err = db.AutoMigrate(&floorArticle{})
		}
		if err == nil {
			err = outbox.EnsureSchema(ctx, sqlDB)
		}
		if err == nil && index {
			err = exec(ctx, db, "CREATE INDEX oi_events_key ON oi_events (tbl, key, id)")
		}
		var ins *sql.Stmt
		if err == nil {
			ins, err = sqlDB.PrepareContext(ctx, outbox.AppendQuery(1))
		}
		if err != nil {
			Close(db)
			return nil, nil, err
		}
		docs := Docs(n)
		var vec []byte
		err = db.Callback().Create().After("gorm:create").Before("gorm:commit_or_rollback_transaction").Register("naive_outbox", func(db *gorm.DB) {
			id := db.Statement.ReflectValue.Interface().(floorArticle).ID
			tx := db.Statement.ConnPool.(*sql.Tx)
			_, err := tx.StmtContext(db.Statement.Context, ins).ExecContext(db.Statement.Context, "floor_articles", int64(id), int64(outbox.OpInsert), vec, nil, time.Now().UnixNano())
			_ = db.AddError(err)
		})
		if err != nil {
			Close(db)
			return nil, nil, err
		}
		return func(from, to int) error {
			for _, d := range docs[from:to] {
				vec = d.VecBytes
				if err := db.WithContext(ctx).Create(&floorArticle{Title: d.Title, Body: d.Body}).Error; err != nil {
					return err
				}
			}
			return nil
		}, closer(db), nil
	}}
}

// Ours against the naive outbox: what the plugin costs beyond the outbox
// row itself (≈1 means nothing).
func BenchmarkFloorOursVsNaiveOutbox(b *testing.B) {
	benchInterleaved(b, StepOursCreate(), stepNaiveOutbox(false), 50)
}

// The naive outbox against the same-bytes baseline: the floor of target 1.
func BenchmarkFloorNaiveOutboxVsBlob(b *testing.B) {
	benchInterleaved(b, stepNaiveOutbox(false), StepGormBlobCreate(), 50)
}

// The same floor with the (tbl, key, id) index of schema version 1: what
// that index cost per create.
func BenchmarkFloorNaiveOutboxV1IndexVsBlob(b *testing.B) {
	benchInterleaved(b, stepNaiveOutbox(true), StepGormBlobCreate(), 50)
}

// BenchmarkFloorWALFrames counts the WAL frames (pages) each single-row
// create commits: after setup, the WAL is checkpointed and truncated, then
// 120 creates run (fewer frames than the automatic checkpoint threshold of
// 1000, so the WAL keeps every frame).
func BenchmarkFloorWALFrames(b *testing.B) {
	ctx := context.Background()
	const n = 120
	for _, side := range []struct {
		name string
		s    Stepper
	}{{"blob", StepGormBlobCreate()}, {"naive-outbox", stepNaiveOutbox(false)}, {"naive-outbox-v1index", stepNaiveOutbox(true)}, {"ours", StepOursCreate()}} {
		dir := b.TempDir()
		step, done, err := side.s.Setup(ctx, dir, n)
		require.NoError(b, err)
		require.NoError(b, step(0, 1)) // first write: prepared statements, sqlite_sequence row
		db, err := Open(dir)
		require.NoError(b, err)
		require.NoError(b, exec(ctx, db, "PRAGMA wal_checkpoint(TRUNCATE)"))
		Close(db)
		walPath := filepath.Join(dir, "bench.db-wal")
		require.Zero(b, walSize(walPath))
		require.NoError(b, step(1, n))
		frames := float64(walSize(walPath)-32) / (4096 + 24) / float64(n-1)
		done()
		b.ReportMetric(frames, side.name+"-frames/op")
	}
	b.ReportMetric(0, "ns/op")
}

func walSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
