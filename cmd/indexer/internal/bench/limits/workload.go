package limits

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// QueryK is the k / limit of the query workloads.
const QueryK = 10

// Workload is one engine measurement.
type Workload struct {
	ID    string // stable name, e.g. "index": the enginecgo program's -workload
	Title string // what is measured, for the report
	Unit  string
	// HigherIsBetter is true for throughputs (rows/s).
	HigherIsBetter bool
	// MaxRows caps the documents the workload uses (0: all n).
	MaxRows int
	// Run measures the workload on db, a fresh empty database, with n
	// documents; setup inside Run is not timed.
	Run func(ctx context.Context, db *sql.DB, n int) (float64, error)
}

// Rows returns how many documents the workload uses when given n.
func (w Workload) Rows(n int) int {
	if w.MaxRows > 0 {
		return min(n, w.MaxRows)
	}
	return n
}

// EngineWorkloads returns the raw limits that target 12 measures on both
// engines, in report order. Single-row writes use at most 2000 rows;
// queries run over all n.
func EngineWorkloads() []Workload {
	return []Workload{
		{ID: "insert-each", Title: "single-row BEGIN/INSERT/COMMIT of a document with its vector BLOB", Unit: "µs/row", MaxRows: insertEachRows, Run: runInsertEach},
		{ID: "index", Title: "vec0 + FTS5 inserts, transactions of 10000", Unit: "rows/s", HigherIsBetter: true, Run: runIndex},
		{ID: "rebuild", Title: "FTS5 'rebuild' + vec0 inserts, one transaction", Unit: "rows/s", HigherIsBetter: true, Run: runRebuild},
		{ID: "knn", Title: fmt.Sprintf("vec0 KNN k=%d", QueryK), Unit: "µs/query", Run: runKNN},
		{ID: "search", Title: fmt.Sprintf("FTS5 MATCH, bm25 top %d", QueryK), Unit: "µs/query", Run: runSearch},
	}
}

// LookupWorkload returns the engine workload with that ID.
func LookupWorkload(id string) (Workload, bool) {
	for _, w := range EngineWorkloads() {
		if w.ID == id {
			return w, true
		}
	}
	return Workload{}, false
}

// insertEachRows caps the single-row writes: one commit each.
const insertEachRows = 2000

func runInsertEach(ctx context.Context, db *sql.DB, n int) (float64, error) {
	docs := Docs(min(n, insertEachRows))
	if err := Exec(ctx, db, BlobDDL); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := InsertEach(ctx, db, docs); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds() * 1e6 / float64(len(docs)), nil
}

func runIndex(ctx context.Context, db *sql.DB, n int) (float64, error) {
	return FillRate(ctx, db, n, func(ctx context.Context, db *sql.DB, docs []Doc) error {
		return Index(ctx, db, docs, 10000)
	}, nil)
}

func runRebuild(ctx context.Context, db *sql.DB, n int) (float64, error) {
	return FillRate(ctx, db, n, Rebuild, nil)
}

// FillRate prepares n documents with empty sidecars (Prepare, not timed)
// and returns fill's rate in rows per second of clock (wall-clock time when
// nil; e.g. the process's CPU time).
func FillRate(ctx context.Context, db *sql.DB, n int, fill func(context.Context, *sql.DB, []Doc) error, clock func() time.Duration) (float64, error) {
	if clock == nil {
		clock = func() time.Duration { return time.Duration(time.Now().UnixNano()) }
	}
	docs := Docs(n)
	if err := Prepare(ctx, db, docs); err != nil {
		return 0, err
	}
	start := clock()
	if err := fill(ctx, db, docs); err != nil {
		return 0, err
	}
	return float64(n) / (clock() - start).Seconds(), nil
}

// indexed loads and indexes n documents (setup of the query workloads).
func indexed(ctx context.Context, db *sql.DB, n int) error {
	docs := Docs(n)
	if err := Prepare(ctx, db, docs); err != nil {
		return err
	}
	return Rebuild(ctx, db, docs)
}

// queries is the number of queries a query workload times.
const queries = 30

func runKNN(ctx context.Context, db *sql.DB, n int) (float64, error) {
	if err := indexed(ctx, db, n); err != nil {
		return 0, err
	}
	vecs := QueryVectors(queries)
	return MedianMicros(queries, func(i int) error {
		b, err := outbox.EncodeVector(vecs[i], Dim, outbox.EncodingBinary)
		if err != nil {
			return err
		}
		got, err := KNN(ctx, db, b, QueryK)
		if err == nil && len(got) != min(QueryK, n) {
			err = fmt.Errorf("limits: KNN returned %d rows, want %d", len(got), min(QueryK, n))
		}
		return err
	})
}

func runSearch(ctx context.Context, db *sql.DB, n int) (float64, error) {
	if err := indexed(ctx, db, n); err != nil {
		return 0, err
	}
	terms := QueryTerms(queries)
	return MedianMicros(queries, func(i int) error {
		_, err := Search(ctx, db, terms[i], QueryK)
		return err
	})
}

// MedianMicros runs fn for each of q queries (after one warm-up) and
// returns the median µs per query.
func MedianMicros(q int, fn func(i int) error) (float64, error) {
	if err := fn(0); err != nil {
		return 0, err
	}
	ts := make([]float64, q)
	for i := range q {
		start := time.Now()
		if err := fn(i); err != nil {
			return 0, err
		}
		ts[i] = float64(time.Since(start).Nanoseconds()) / 1e3
	}
	slices.Sort(ts)
	return ts[q/2], nil
}
