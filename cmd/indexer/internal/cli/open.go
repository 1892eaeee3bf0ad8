package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// ErrNotPrepared reports a database that gormplugin.Migrate never prepared
// (it has no registry table).
var ErrNotPrepared = errors.New("database has no outbox registry (oi_registry): run gormplugin.Migrate in the application first")

// Session is an open database with an Indexer on it.
type Session struct {
	DB      *gorm.DB
	Indexer *indexer.Indexer
	closeDB func() error
}

// Close closes the Indexer (releasing the lease) and the database.
func (s *Session) Close() error {
	return errors.Join(s.Indexer.Close(), s.closeDB())
}

// OpenIndexer opens the database named by --db, checks that Migrate
// prepared it, and creates an Indexer with opts (plus the logger). The
// Indexer needs no Go model types: it reads the registry.
func (c *Common) OpenIndexer(ctx context.Context, log *slog.Logger, opts ...indexer.Option) (*Session, error) {
	db, closeDB, err := c.Open(ctx, log)
	if err != nil {
		return nil, err
	}
	ok, err := sqlutil.TableExists(ctx, db.Statement.ConnPool, outbox.RegistryTable)
	if err != nil {
		closeDB()
		return nil, fmt.Errorf("read database %s: %w", c.DB, err)
	}
	if !ok {
		closeDB()
		return nil, fmt.Errorf("%s: %w", c.DB, ErrNotPrepared)
	}
	ix, err := indexer.New(db, append([]indexer.Option{indexer.WithLogger(log)}, opts...)...)
	if err != nil {
		closeDB()
		return nil, err
	}
	return &Session{DB: db, Indexer: ix, closeDB: closeDB}, nil
}
