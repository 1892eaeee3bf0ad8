package reliab

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrInjected is the permanent (non-SQLite) error Faults injects.
var ErrInjected = errors.New("reliab: injected fault")

// Faults wraps the pinned SQLite driver and, while armed, makes statements
// run inside transactions fail at random: before they run (prepare, exec,
// query), and at commit — either rolling back and failing, or committing
// and then reporting a failure anyway (an "ambiguous" commit, as when the
// connection drops after the commit reached the disk). Injected errors are
// SQLite I/O and busy errors (which the indexer treats as transient) and,
// one time in four, a permanent error.
type Faults struct {
	Rate       float64 // probability that a statement inside a transaction fails
	CommitRate float64 // probability that a commit fails (half of them after committing)
	// Kinds restricts the injected faults: "permanent", "busy", "io",
	// "commit" (failed commits only) or "" for all.
	Kinds string

	armed     atomic.Bool
	mu        sync.Mutex
	rng       *rand.Rand
	Injected  atomic.Int64 // faults injected before a statement or a commit
	Ambiguous atomic.Int64 // commits that succeeded but were reported failed
}

// NewFaults returns an unarmed injector with the given rates and seed.
func NewFaults(rate, commitRate float64, seed uint64) *Faults {
	return &Faults{Rate: rate, CommitRate: commitRate, rng: rand.New(rand.NewPCG(seed, 3))}
}

// Arm starts (true) or stops (false) injecting.
func (f *Faults) Arm(on bool) { f.armed.Store(on) }

// roll decides whether to fail now and with what.
func (f *Faults) roll(rate float64) error {
	if !f.armed.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() >= rate {
		return nil
	}
	switch f.Kinds {
	case "permanent":
		return ErrInjected
	case "busy":
		return engine.NewError(engine.CodeBusy)
	case "io", "commit":
		return engine.NewError(engine.CodeIOErr)
	}
	switch f.rng.IntN(4) {
	case 0:
		return ErrInjected
	case 1:
		return engine.NewError(engine.CodeBusy)
	default:
		return engine.NewError(engine.CodeIOErr)
	}
}

func (f *Faults) coin() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.IntN(2) == 0
}

// Open opens dsn through the faulty driver with gorm.
func (f *Faults) Open(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	c, err := engine.Connector(dsn)
	require.NoError(t, err)
	sqlDB := sql.OpenDB(faultConnector{c, f})
	t.Cleanup(func() { sqlDB.Close() })
	db, err := gorm.Open(engine.DialectorDB(sqlDB), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	return db
}

type faultConnector struct {
	driver.Connector
	f *Faults
}

func (c faultConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &faultConn{inner: conn.(innerConn), f: c.f}, nil
}

// faultConn forwards to the real connection, failing at random inside
// transactions.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
}

type faultConn struct {
	inner innerConn
	f     *Faults
	inTx  bool
}

var (
	_ driver.Conn               = (*faultConn)(nil)
	_ driver.ConnBeginTx        = (*faultConn)(nil)
	_ driver.ConnPrepareContext = (*faultConn)(nil)
	_ driver.ExecerContext      = (*faultConn)(nil)
	_ driver.NamedValueChecker  = (*faultConn)(nil)
	_ driver.Tx                 = (*faultTx)(nil)
)

func (c *faultConn) fault() error {
	if !c.inTx || c.f.Kinds == "commit" {
		return nil
	}
	return c.roll(c.f.Rate)
}

func (c *faultConn) roll(rate float64) error {
	if !c.inTx {
		return nil
	}
	err := c.f.roll(rate)
	if err != nil {
		c.f.Injected.Add(1)
	}
	return err
}

func (c *faultConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *faultConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	if err := c.fault(); err != nil {
		return nil, err
	}
	s, err := c.inner.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &faultStmt{Stmt: s, c: c}, nil
}

func (c *faultConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.fault(); err != nil {
		return nil, err
	}
	return c.inner.(driver.ExecerContext).ExecContext(ctx, q, args)
}

// CheckNamedValue defers to the driver's own check when it has one, else
// (driver.ErrSkip) to database/sql's default conversion.
func (c *faultConn) CheckNamedValue(v *driver.NamedValue) error {
	if ch, ok := c.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(v)
	}
	return driver.ErrSkip
}

func (c *faultConn) Close() error { return c.inner.Close() }

func (c *faultConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *faultConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.inner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return &faultTx{inner: tx, c: c}, nil
}

type faultTx struct {
	inner driver.Tx
	c     *faultConn
}

func (t *faultTx) Commit() error {
	defer func() { t.c.inTx = false }()
	if err := t.c.roll(t.c.f.CommitRate); err != nil {
		if t.c.f.coin() {
			// The commit happens, but the caller is told it failed.
			if cerr := t.inner.Commit(); cerr != nil {
				return cerr
			}
			t.c.f.Ambiguous.Add(1)
			return err
		}
		_ = t.inner.Rollback()
		return err
	}
	return t.inner.Commit()
}

func (t *faultTx) Rollback() error {
	t.c.inTx = false
	return t.inner.Rollback()
}

type faultStmt struct {
	driver.Stmt
	c *faultConn
}

func (s *faultStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.c.fault(); err != nil {
		return nil, err
	}
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *faultStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.c.fault(); err != nil {
		return nil, err
	}
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

func (s *faultStmt) CheckNamedValue(v *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(v)
	}
	return s.c.CheckNamedValue(v)
}
