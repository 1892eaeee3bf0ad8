package outbox

import (
	"context"
	"database/sql"
)

// DB is the subset of *sql.DB, *sql.Tx, *sql.Conn and gorm.ConnPool that this
// package needs. Pass the transaction of the write being captured, never a
// fresh handle: an event written on another connection would survive a
// rollback of the write.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
