package gormplugin_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// Article: integer key, external-content FTS over two columns, a vector with
// a metadata column, soft delete.
type Article struct {
	ID        uint
	Title     string `fts5:"tokenize=porter+unicode61"`
	Body      string `fts5:""`
	Lang      string
	Views     int
	Embedding vecsink.Embedding `vec:"dim=3;metric=cosine;metadata=lang"`
	UpdatedAt time.Time
	DeletedAt gorm.DeletedAt
	Comments  []Comment
}

// Comment: a tagged child of Article (in-table FTS, no vector).
type Comment struct {
	ID        uint
	ArticleID uint
	Text      string `fts5:"external=false"`
}

// Note: string key, vector stored as []float32 with gorm:"-", in-table FTS.
type Note struct {
	Slug  string `gorm:"primaryKey"`
	Text  string `fts5:"column=content"`
	Score float64
	Vec   []float32 `gorm:"-" vec:"dim=2;metric=l2"`
}

// Plain is an untagged model.
type Plain struct {
	ID    uint
	Name  string
	Count int
}

func setup(t *testing.T, opts ...gormplugin.Option) *gorm.DB {
	t.Helper()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New(opts...)))
	require.NoError(t, gormplugin.Migrate(db, &Article{}, &Comment{}, &Note{}, &Plain{}))
	return db
}

// events returns every event in the outbox, zeroing ids and times.
func events(t *testing.T, db *gorm.DB) []outbox.Event {
	t.Helper()
	evs, err := outbox.ReadEvents(context.Background(), db.Statement.ConnPool, 0, 100000)
	require.NoError(t, err)
	for i := range evs {
		require.NotZero(t, evs[i].ID)
		require.False(t, evs[i].At.IsZero())
		evs[i].ID, evs[i].At = 0, time.Time{}
	}
	return evs
}

// clearEvents empties the outbox.
func clearEvents(t *testing.T, db *gorm.DB) {
	t.Helper()
	require.NoError(t, db.Exec("DELETE FROM oi_events").Error)
}

func vec(t *testing.T, dim int, enc string, v ...float32) []byte {
	t.Helper()
	b, err := outbox.EncodeVector(v, dim, enc)
	require.NoError(t, err)
	return b
}

func ev(tbl string, key any, op outbox.Op, v []byte, old ...any) outbox.Event {
	e := outbox.Event{Table: tbl, Key: key, Op: op, Vec: v}
	if old != nil {
		e.Old = old
	}
	return e
}

// none is the "no vector" vector of insert events.
var none = []byte{}

// counter wraps a gorm.ConnPool and records the SQL it runs, so that tests
// can assert how many statements a write costs.
type counter struct {
	pool gorm.ConnPool
	log  *[]string
}

func (c *counter) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return c.pool.PrepareContext(ctx, q)
}

func (c *counter) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	*c.log = append(*c.log, q)
	return c.pool.ExecContext(ctx, q, args...)
}

func (c *counter) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	*c.log = append(*c.log, q)
	return c.pool.QueryContext(ctx, q, args...)
}

func (c *counter) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	*c.log = append(*c.log, q)
	return c.pool.QueryRowContext(ctx, q, args...)
}

func (c *counter) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	b, ok := c.pool.(gorm.TxBeginner)
	if !ok {
		return nil, gorm.ErrInvalidTransaction
	}
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &counterTx{counter{pool: tx, log: c.log}, tx}, nil
}

type counterTx struct {
	counter
	tx *sql.Tx
}

func (c *counterTx) Commit() error   { return c.tx.Commit() }
func (c *counterTx) Rollback() error { return c.tx.Rollback() }

// counted returns a session whose statements are recorded in *log.
func counted(db *gorm.DB, log *[]string) *gorm.DB {
	s := db.Session(&gorm.Session{Context: context.Background()}) // a Context forces a statement clone
	s.Statement.ConnPool = &counter{pool: db.ConnPool, log: log}
	return s
}
