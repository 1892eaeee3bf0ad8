// Package tests holds end-to-end tests that run the real gorm plugin, the
// indexer and the sinks together on real SQLite files.
package tests

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

var (
	modelSeed  = flag.Uint64("model.seed", 0, "seed of TestModelGorm (0: random seeds, printed on failure)")
	modelRuns  = flag.Int("model.runs", 0, "number of random runs of TestModelGorm (default 6, or 200 with -model.long)")
	modelSteps = flag.Int("model.steps", 0, "write/indexer steps per run of TestModelGorm (default 150, or 400 with -model.long)")
	modelLong  = flag.Bool("model.long", false, "long mode of TestModelGorm: many more and longer runs")
	modelLog   = flag.Bool("model.log", false, "print the step log of every run, not only of failing ones")
)

// TestModelGorm is the randomized model-based test of the whole pipeline:
// random sequences of writes through gorm with the plugin installed (every
// write path of the capture side, on six models covering both key types,
// soft delete, the three FTS5 modes, the three metrics, both vector
// encodings and metadata columns), transactions that commit or roll back
// (nested, savepoints), raw SQL bulk loads that bypass gorm, interleaved
// with the indexer's Drain, Sync, Replay and Rebuild with small batches.
// A reference model keeps the vector written for every key (the source table
// has no vector column); the source table is the reference for text, flags
// and metadata. After a final Drain (and a Rebuild of tables bulk-loaded
// since their last rebuild) the sidecars must equal the reference exactly;
// then again after replaying everything twice, and after a full rebuild.
//
// A failing run prints its seed and its step log; rerun it with
// go test ./tests -run TestModelGorm -model.seed=N [-model.steps=N].
func TestModelGorm(t *testing.T) {
	t.Parallel()
	runs, steps := 6, 150
	if *modelLong {
		runs, steps = 200, 400
	}
	if *modelRuns > 0 {
		runs = *modelRuns
	}
	if *modelSteps > 0 {
		steps = *modelSteps
	}
	seeds := []uint64{*modelSeed}
	if *modelSeed == 0 {
		seeds = seeds[:0]
		base := uint64(time.Now().UnixNano())
		for i := range runs {
			seeds = append(seeds, base+uint64(i)*0x9e3779b9)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			e := newModelEnv(t, seed)
			defer func() {
				if t.Failed() || *modelLog {
					t.Logf("step log of seed %d:\n%s", seed, strings.Join(e.log, "\n"))
				}
				if t.Failed() {
					t.Logf("reproduce with: go test ./tests -run 'TestModelGorm' -model.seed=%d -model.steps=%d", seed, steps)
				}
			}()
			e.run(steps)
		})
	}
}

// modelEnv is one run: a database with the plugin and the six models, an
// indexer, and the reference.
type modelEnv struct {
	t      *testing.T
	ctx    context.Context
	seed   uint64
	r      *rand.Rand
	db     *gorm.DB
	sql    *sql.DB
	ix     *indexer.Indexer
	tables []*mt
	by     map[string]*mt

	ref     vecRef          // vectors written, per table and key
	dirty   map[string]bool // tables written by raw SQL since their last rebuild
	rawNext int64

	log     []string
	step    int
	depth   int
	spN     int
	markerN int // markers of opRandomWhere: unique even within one step
}

// vecRef is the reference for vectors: table → key → vector. A key with no
// entry has no vector (or does not exist).
type vecRef map[string]map[any][]float32

func (v vecRef) clone() vecRef {
	out := make(vecRef, len(v))
	for t, m := range v {
		c := make(map[any][]float32, len(m))
		for k, x := range m {
			c[k] = x
		}
		out[t] = c
	}
	return out
}

var errRollback = errors.New("model test: roll back")

func newModelEnv(t *testing.T, seed uint64) *modelEnv {
	// Comments may outlive their document (deletes are random): no
	// foreign key constraint.
	db := testdb.New(t, &gorm.Config{DisableForeignKeyConstraintWhenMigrating: true})
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, modelModels...))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	e := &modelEnv{
		t: t, ctx: context.Background(), seed: seed,
		r:  rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)),
		db: db, sql: sqlDB, tables: modelTables(), by: map[string]*mt{},
		ref: vecRef{}, dirty: map[string]bool{},
	}
	for _, m := range e.tables {
		e.by[m.name] = m
		e.ref[m.name] = map[any][]float32{}
	}
	// Small batches force stragglers, folding and many checkpoints.
	batch, rebuildBatch := 1+e.r.IntN(12), 1+e.r.IntN(30)
	opts := []indexer.Option{indexer.WithBatchSize(batch), indexer.WithRebuildBatchSize(rebuildBatch),
		indexer.WithEmbedder(vecsink.HashEmbedder(8)), indexer.WithEmbedRound(1 + e.r.IntN(20))}
	retention := "compact at once"
	if e.r.IntN(3) == 0 {
		opts = append(opts, indexer.WithRetention(-1))
		retention = "keep everything"
	}
	e.ix, err = indexer.New(db, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { e.ix.Close() })
	e.logf("seed %d: batch size %d, rebuild batch size %d, retention: %s", seed, batch, rebuildBatch, retention)
	return e
}

func (e *modelEnv) logf(format string, args ...any) {
	e.log = append(e.log, fmt.Sprintf("%4d %s%s", e.step, strings.Repeat("  ", e.depth), fmt.Sprintf(format, args...)))
}

// run performs steps random steps, then the final checks.
func (e *modelEnv) run(steps int) {
	t := e.t
	for e.step = 1; e.step <= steps; e.step++ {
		switch x := e.r.IntN(100); {
		case x < 70:
			e.write(e.topDB())
		case x < 76:
			e.transaction(e.db)
		case x < 79:
			e.rawInsert(e.db, e.pick(e.rawTables()))
		case x < 80:
			e.rawUpdateAndRebuild()
		case x < 88:
			e.drain()
			if e.r.IntN(4) == 0 {
				e.check("after a drain")
			}
		case x < 91:
			e.logf("sync")
			require.NoError(t, e.ix.Sync(e.ctx))
		case x < 95:
			e.replay()
		default:
			e.rebuild()
		}
	}
	e.step = 0
	e.logf("final drain")
	e.drain()
	if dirty := e.dirtyTables(); len(dirty) > 0 {
		e.logf("final rebuild of %v (raw SQL rows)", dirty)
		require.NoError(t, e.ix.Rebuild(e.ctx, dirty...))
		clear(e.dirty)
		e.drain()
	}
	e.check("after the final drain")
	st, err := e.ix.Status(e.ctx)
	require.NoError(t, err)
	require.Zero(t, st.Pending, "pending events after the final drain")
	// The only dead letters allowed: texts of a chunked field whose key is
	// out of the chunk rowid range (the raw inserts use extreme keys).
	dls, err := e.ix.DeadLetters(e.ctx)
	require.NoError(t, err)
	for _, dl := range dls {
		require.Contains(t, dl.Error, "outside the range chunk= supports", "dead letter %d of %s key %v", dl.ID, dl.Table, dl.Key)
	}
	require.Equal(t, st.Head, st.Applied)
	e.checkStatus(st)
	before := e.snapshot()

	e.logf("replay(0) twice")
	require.NoError(t, e.ix.Replay(e.ctx, 0))
	require.NoError(t, e.ix.Replay(e.ctx, 0))
	require.Equal(t, before, e.snapshot(), "replaying everything twice changed the sidecars")
	e.check("after replaying everything twice")

	e.logf("full rebuild")
	require.NoError(t, e.ix.Rebuild(e.ctx))
	e.check("after a full rebuild")
	require.Equal(t, before, e.snapshot(), "a full rebuild changed the sidecars")
	// PRAGMA integrity_check runs on a connection of its own: on a pooled
	// connection FTS5's check uses that connection's cached index structure,
	// which is stale once another connection wrote the table (a false
	// "malformed inverted index"; see tests/integrity_test.go).
	var path string
	require.NoError(t, e.sql.QueryRowContext(e.ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path))
	own, err := sql.Open("sqlite3", engine.DSN(path))
	require.NoError(t, err)
	defer own.Close()
	var ic string
	require.NoError(t, own.QueryRowContext(e.ctx, "PRAGMA integrity_check").Scan(&ic))
	require.Equal(t, "ok", ic)
}

func (e *modelEnv) dirtyTables() []string {
	var out []string
	for n, d := range e.dirty {
		if d {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// topDB is the handle of a write outside any transaction: the database, or
// a session with SkipDefaultTransaction (the plugin then opens its own).
func (e *modelEnv) topDB() *gorm.DB {
	if e.r.IntN(4) == 0 {
		e.logf("(SkipDefaultTransaction session)")
		return e.db.Session(&gorm.Session{SkipDefaultTransaction: true})
	}
	return e.db
}

func (e *modelEnv) drain() {
	n, err := e.ix.Drain(e.ctx)
	require.NoError(e.t, err)
	e.logf("drain: %d events", n)
}

func (e *modelEnv) replay() {
	head := e.count("SELECT coalesce(max(id), 0) FROM oi_events")
	from := e.r.Int64N(head + 2)
	e.logf("replay(%d)", from)
	require.NoError(e.t, e.ix.Replay(e.ctx, from))
}

func (e *modelEnv) rebuild() {
	var names []string
	for _, m := range e.tables {
		if e.r.IntN(3) == 0 {
			names = append(names, m.name)
		}
	}
	e.logf("rebuild %v", names)
	require.NoError(e.t, e.ix.Rebuild(e.ctx, names...))
	if len(names) == 0 {
		clear(e.dirty)
	}
	for _, n := range names {
		delete(e.dirty, n)
	}
}

func (e *modelEnv) count(q string, args ...any) int64 {
	var n int64
	require.NoError(e.t, e.sql.QueryRowContext(e.ctx, q, args...).Scan(&n))
	return n
}

// transaction runs a few writes in db.Transaction (nested when db is
// already a transaction), committing or rolling back.
func (e *modelEnv) transaction(db *gorm.DB) {
	commit := e.r.IntN(3) > 0
	snap := e.ref.clone()
	e.logf("begin transaction (will %s)", map[bool]string{true: "commit", false: "roll back"}[commit])
	e.depth++
	err := db.Transaction(func(tx *gorm.DB) error {
		for range 1 + e.r.IntN(4) {
			switch x := e.r.IntN(20); {
			case x < 15:
				e.write(tx)
			case x < 17 && e.depth < 3:
				e.transaction(tx)
			case x < 19 && e.depth < 3:
				e.savepoint(tx)
			default:
				e.rawInsert(tx, e.pick(e.rawTables()))
			}
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	e.depth--
	if commit {
		require.NoError(e.t, err)
		e.logf("committed")
		return
	}
	require.ErrorIs(e.t, err, errRollback)
	e.ref = snap
	e.logf("rolled back")
}

// savepoint runs writes after a SavePoint and maybe rolls back to it.
func (e *modelEnv) savepoint(tx *gorm.DB) {
	e.spN++
	name := fmt.Sprintf("sp%d", e.spN)
	back := e.r.IntN(2) == 0
	snap := e.ref.clone()
	e.logf("savepoint %s (will %s)", name, map[bool]string{true: "roll back to it", false: "keep"}[back])
	require.NoError(e.t, tx.SavePoint(name).Error)
	e.depth++
	for range 1 + e.r.IntN(3) {
		e.write(tx)
	}
	e.depth--
	if back {
		require.NoError(e.t, tx.RollbackTo(name).Error)
		e.ref = snap
		e.logf("rolled back to %s", name)
	}
}

func pickOne[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func (e *modelEnv) pick(ms []*mt) *mt { return pickOne(e.r, ms) }

// rawTables are the tables that raw SQL loads into. m_comments is left out:
// raw rows there get negative keys, which its uint key cannot hold.
func (e *modelEnv) rawTables() []*mt {
	var out []*mt
	for _, m := range e.tables {
		if !m.uintKey {
			out = append(out, m)
		}
	}
	return out
}
