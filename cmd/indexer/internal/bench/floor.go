package bench

import (
	"context"
	"database/sql"
	"time"

	"github.com/outboxindexer/outboxindexer/outbox"
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

// StepNaiveOutbox creates floorArticle rows and appends each row's event
// (the vector encoded as the plugin and the baseline's Valuer encode it)
// from a plain gorm callback, in the create's transaction, with a statement
// prepared once: the least any capture can do. index=true adds the
// (tbl, key, id) index that schema version 1 had, for comparison.
func StepNaiveOutbox(index bool) Stepper {
	return Stepper{Name: "gorm Create + hand-written outbox row", Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
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
				var err error
				if vec, err = outbox.EncodeVector(d.Vec, Dim, outbox.EncodingBinary); err != nil { // as any capture must
					return err
				}
				if err := db.WithContext(ctx).Create(&floorArticle{Title: d.Title, Body: d.Body}).Error; err != nil {
					return err
				}
			}
			return nil
		}, closer(db), nil
	}}
}
