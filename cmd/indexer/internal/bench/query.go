package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench/limits"
	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Query workloads (issue 7, target 8): KNN[T] and Search[T] at k/limit 10
// against the raw sidecar query plus one gorm Find of the ids, on the same
// indexed database.

// QueryK is the k of KNN and the limit of Search.
const QueryK = limits.QueryK

// fixtures are indexed databases of n Articles shared by the query
// workloads of a run (building one of 100k rows takes a while); CloseFixtures
// removes them.
var fixtures struct {
	sync.Mutex
	m map[int]*fixture
}

type fixture struct {
	dir string
	db  *gorm.DB
}

// indexedFixture returns the shared database of n indexed Articles,
// building it on first use.
func indexedFixture(ctx context.Context, n int) (*gorm.DB, error) {
	fixtures.Lock()
	defer fixtures.Unlock()
	if f := fixtures.m[n]; f != nil {
		return f.db, nil
	}
	dir, err := os.MkdirTemp("", "oi-bench-query-")
	if err != nil {
		return nil, err
	}
	db, err := loadPending(ctx, dir, n)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := drainAll(ctx, db, n, indexer.WithBatchSize(BulkLoadBatch)); err != nil {
		Close(db)
		os.RemoveAll(dir)
		return nil, err
	}
	if fixtures.m == nil {
		fixtures.m = map[int]*fixture{}
	}
	fixtures.m[n] = &fixture{dir: dir, db: db}
	return db, nil
}

// CloseFixtures closes and removes the databases the query workloads built.
func CloseFixtures() {
	fixtures.Lock()
	defer fixtures.Unlock()
	for n, f := range fixtures.m {
		Close(f.db)
		os.RemoveAll(f.dir)
		delete(fixtures.m, n)
	}
}

// findIDs is the baseline's model load: one gorm Find of the ids.
func findIDs(ctx context.Context, db *gorm.DB, ids []any) error {
	var out []Article
	col := clause.Column{Table: clause.CurrentTable, Name: "id"}
	if err := db.WithContext(ctx).Where(clause.IN{Column: col, Values: ids}).Find(&out).Error; err != nil {
		return err
	}
	if len(out) != len(ids) {
		return fmt.Errorf("bench: Find loaded %d of %d rows", len(out), len(ids))
	}
	return nil
}

// queryFunc builds the i-th query of a workload over db.
type queryFunc func(ctx context.Context, db *gorm.DB, q int) (func(i int) error, error)

// queryWorkload times q queries of fn over the fixture of n rows.
func queryWorkload(name string, n, q int, fn queryFunc) Workload {
	return Workload{Name: name, Unit: "µs/query", Run: func(ctx context.Context, _ string) (float64, error) {
		db, err := indexedFixture(ctx, n)
		if err != nil {
			return 0, err
		}
		f, err := fn(ctx, db, q)
		if err != nil {
			return 0, err
		}
		return limits.MedianMicros(q, f)
	}}
}

// pairedQueries times q queries of ours and base over the fixture of n
// rows alternately, query by query (ours first on even queries), so that
// the machine's drift hits both alike; it returns the median µs of each.
func pairedQueries(ctx context.Context, n, q int, ours, base queryFunc) (map[string]float64, error) {
	db, err := indexedFixture(ctx, n)
	if err != nil {
		return nil, err
	}
	fo, err := ours(ctx, db, q)
	if err != nil {
		return nil, err
	}
	fb, err := base(ctx, db, q)
	if err != nil {
		return nil, err
	}
	to, tb := make([]float64, q), make([]float64, q)
	timed := func(f func(int) error, i int, dst []float64) error {
		start := time.Now()
		err := f(i)
		dst[i] = float64(time.Since(start).Nanoseconds()) / 1e3
		return err
	}
	if err := fo(0); err != nil { // warm-up
		return nil, err
	}
	if err := fb(0); err != nil {
		return nil, err
	}
	for i := range q {
		first, second := fo, fb
		d1, d2 := to, tb
		if i%2 == 1 {
			first, second, d1, d2 = fb, fo, tb, to
		}
		if err := timed(first, i, d1); err != nil {
			return nil, err
		}
		if err := timed(second, i, d2); err != nil {
			return nil, err
		}
	}
	slices.Sort(to)
	slices.Sort(tb)
	return map[string]float64{"ours": to[q/2], "base": tb[q/2]}, nil
}

func oursKNN(ctx context.Context, db *gorm.DB, q int) (func(int) error, error) {
	vs := limits.QueryVectors(q)
	return func(i int) error {
		rs, err := vecsink.KNN[Article](ctx, db, vs[i], QueryK)
		if err == nil && len(rs) != QueryK {
			err = fmt.Errorf("bench: KNN returned %d results", len(rs))
		}
		return err
	}, nil
}

func rawKNN(ctx context.Context, db *gorm.DB, q int) (func(int) error, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	vs := limits.QueryVectors(q)
	blobs := make([][]byte, q)
	for i, v := range vs {
		if blobs[i], err = outbox.EncodeVector(v, Dim, outbox.EncodingBinary); err != nil {
			return nil, err
		}
	}
	return func(i int) error {
		return rawThenFind(ctx, sqlDB, db, `SELECT rowid, distance FROM articles_vec WHERE embedding MATCH ? AND k = ?`, blobs[i], QueryK)
	}, nil
}

// rawThenFind is the query baseline: the sidecar query in raw SQL (rowid and
// score columns), then one gorm Find of the ids.
func rawThenFind(ctx context.Context, sqlDB *sql.DB, db *gorm.DB, query string, args ...any) error {
	rows, err := sqlDB.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	ids := make([]any, 0, QueryK)
	for rows.Next() {
		var id int64
		var score float64
		if err := rows.Scan(&id, &score); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	return findIDs(ctx, db, ids)
}

func oursSearch(ctx context.Context, db *gorm.DB, q int) (func(int) error, error) {
	terms := limits.QueryTerms(q)
	return func(i int) error {
		_, err := ftssink.Search[Article](ctx, db, ftssink.Term(terms[i]), ftssink.WithLimit(QueryK))
		return err
	}, nil
}

func rawSearch(ctx context.Context, db *gorm.DB, q int) (func(int) error, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	terms := limits.QueryTerms(q)
	return func(i int) error {
		return rawThenFind(ctx, sqlDB, db, `SELECT rowid, bm25(articles_fts) FROM articles_fts WHERE articles_fts MATCH ? ORDER BY bm25(articles_fts), rowid LIMIT ?`, `"`+terms[i]+`"`, QueryK)
	}, nil
}

// OursKNN is vecsink.KNN[Article] with k = QueryK over n rows: median µs of
// q queries.
func OursKNN(n, q int) Workload { return queryWorkload("ours: vecsink.KNN[Article]", n, q, oursKNN) }

// RawKNN is the vec0 KNN query plus one gorm Find of the ids.
func RawKNN(n, q int) Workload { return queryWorkload("raw vec0 KNN + gorm Find", n, q, rawKNN) }

// OursSearch is ftssink.Search[Article] of one term with limit QueryK over
// n rows: median µs of q queries.
func OursSearch(n, q int) Workload {
	return queryWorkload("ours: ftssink.Search[Article]", n, q, oursSearch)
}

// RawSearch is the FTS5 query Search runs (bm25 order, rowid tie-break,
// limit) plus one gorm Find of the ids.
func RawSearch(n, q int) Workload {
	return queryWorkload("raw FTS5 MATCH + gorm Find", n, q, rawSearch)
}

// QueryCases returns the cases of target 8 over n rows, each repetition
// timing q queries (use a smaller q for large n: a KNN over 100k vectors
// takes ~0.1 s). The indexed database is built once per n; call
// CloseFixtures when done.
//
// Each repetition times both sides query by query, alternately (see
// pairedQueries), which keeps the ratio stable on a busy machine.
func QueryCases(n, q int) []Case {
	pair := func(id, name, oursName, baseName string, ours, base queryFunc) Case {
		e := newExperiment(func(ctx context.Context, _ string) (map[string]float64, error) {
			return pairedQueries(ctx, n, q, ours, base)
		})
		return Case{ID: id, Name: name, Ours: e.figure(oursName, "µs/query", "ours"), Baseline: e.figure(baseName, "µs/query", "base"), Target: 1.15}
	}
	return []Case{
		pair("8", fmt.Sprintf("KNN k=%d over %d rows", QueryK, n), "ours: vecsink.KNN[Article]", "raw vec0 KNN + gorm Find", oursKNN, rawKNN),
		pair("8", fmt.Sprintf("Search limit %d over %d rows", QueryK, n), "ours: ftssink.Search[Article]", "raw FTS5 MATCH + gorm Find", oursSearch, rawSearch),
	}
}
