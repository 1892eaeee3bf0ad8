package vecsink

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/outboxindexer/outboxindexer/internal/gormq"
	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// MaxK is the largest k a KNN query accepts: sqlite-vec v0.1.6 refuses
// k > 4096 in a vec0 KNN query. The dot metric, which does not use vec0's
// KNN, keeps the same limit so that every metric accepts the same k.
const MaxK = 4096

// KNN returns the k models of type T whose vectors are nearest to query,
// nearest first, with their distances (see Result).
//
// T is a gorm model migrated by gormplugin.Migrate with a vec tag; its table
// name comes from gorm's schema parser with db's naming strategy (or from
// db.Table). The vec0 sidecar is queried on db's connection (or
// transaction), then the models are loaded with one gorm query
// (WHERE key IN …) on db, so db's Preload, Select and other settings apply;
// conditions on db filter the loaded models, which can then be fewer than k.
// Keys whose source row no longer exists (deleted, not yet indexed) are
// dropped. Soft-deleted rows are excluded unless IncludeDeleted is given.
//
// KNN sees what the indexer has applied; call the indexer's Sync first for
// read-your-writes.
//
// Errors: a query whose length is not the model's dim, or with NaN or Inf,
// or all zeros under cosine (ErrBadVector); k < 1 or k > MaxK (ErrInvalidK);
// a model with no vec tag (ErrNoVec); a model never migrated
// (outbox.ErrNotRegistered).
func KNN[T any](ctx context.Context, db *gorm.DB, query []float32, k int, opts ...Option) ([]Result[T], error) {
	t, err := gormq.Resolve(ctx, db, new(T))
	if err != nil {
		return nil, fmt.Errorf("vecsink: knn: %w", err)
	}
	if t.Spec.Vec == nil {
		return nil, fmt.Errorf("%w: model %s (table %s) has no vec tag", ErrNoVec, t.Schema.Name, t.Table)
	}
	cfg := newQueryConfig(opts)
	ns, err := neighbors(ctx, t.Conn, t.Spec, query, k, cfg)
	if err != nil {
		return nil, err
	}
	keys := make([]any, len(ns))
	for i, n := range ns {
		keys[i] = n.Key
	}
	models, ok, err := gormq.Load[T](ctx, db, t, keys, cfg.includeDeleted)
	if err != nil {
		return nil, fmt.Errorf("vecsink: knn: %w", err)
	}
	out := make([]Result[T], 0, len(ns))
	for i, n := range ns {
		if ok[i] {
			out = append(out, Result[T]{Model: models[i], Distance: n.Distance})
		}
	}
	return out, nil
}

// Neighbors is KNN without models: it returns the primary keys (int64 or
// string) of the k nearest rows of spec's vec0 sidecar and their distances,
// nearest first. It needs no Go model type (db may be a *sql.DB, a *sql.Tx
// or a gorm ConnPool); spec usually comes from outbox.LoadSpec. The keys are
// those the indexer has applied: rows deleted since may still be returned.
func Neighbors(ctx context.Context, db outbox.DB, spec *outbox.Spec, query []float32, k int, opts ...Option) ([]Neighbor, error) {
	if spec == nil || spec.Vec == nil {
		src := "<nil spec>"
		if spec != nil {
			src = spec.Source
		}
		return nil, fmt.Errorf("%w: table %s", ErrNoVec, src)
	}
	return neighbors(ctx, db, spec, query, k, newQueryConfig(opts))
}

func neighbors(ctx context.Context, db outbox.DB, spec *outbox.Spec, query []float32, k int, cfg *queryConfig) ([]Neighbor, error) {
	v := spec.Vec
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if k < 1 || k > MaxK {
		return nil, fmt.Errorf("%w: k=%d for table %s, want 1..%d", ErrInvalidK, k, spec.Source, MaxK)
	}
	if len(query) != v.Dim {
		return nil, fmt.Errorf("%w: query vector has %d dimensions, table %s has dim=%d", ErrBadVector, len(query), spec.Source, v.Dim)
	}
	zero := true
	for i, x := range query {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%w: query vector element %d is %v", ErrBadVector, i, x)
		}
		if x != 0 {
			zero = false
		}
	}
	if zero && v.Metric == outbox.MetricCosine {
		return nil, fmt.Errorf("%w: query vector is all zeros: no direction under metric=cosine (table %s)", ErrBadVector, spec.Source)
	}
	blob, err := outbox.EncodeVector(query, v.Dim, outbox.EncodingBinary)
	if err != nil {
		return nil, err
	}
	q, args := knnSQL(spec, cfg, blob, k)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("vecsink: knn on %s: %w", v.Table, err)
	}
	defer rows.Close()
	out := make([]Neighbor, 0, k)
	for rows.Next() {
		var (
			key  any
			dist sql.NullFloat64
		)
		if err := rows.Scan(&key, &dist); err != nil {
			return nil, fmt.Errorf("vecsink: knn on %s: %w", v.Table, err)
		}
		nk, err := gormq.ScanKey(key)
		if err != nil {
			return nil, fmt.Errorf("vecsink: knn on %s: %w", v.Table, err)
		}
		d := math.NaN()
		if dist.Valid {
			d = dist.Float64
			if v.Metric == outbox.MetricDot {
				d = -d
			}
		}
		out = append(out, Neighbor{Key: nk, Distance: d})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vecsink: knn on %s: %w", v.Table, err)
	}
	if v.Metric != outbox.MetricDot {
		slices.SortStableFunc(out, compareNeighbors)
	}
	return out, nil
}

// compareNeighbors orders by distance (NaN last), then by key.
func compareNeighbors(a, b Neighbor) int {
	if c := cmp.Compare(a.Distance, b.Distance); c != 0 {
		an, bn := math.IsNaN(a.Distance), math.IsNaN(b.Distance)
		if an != bn {
			if an {
				return 1
			}
			return -1
		}
		return c
	}
	switch ak := a.Key.(type) {
	case int64:
		bk, _ := b.Key.(int64)
		return cmp.Compare(ak, bk)
	case string:
		bk, _ := b.Key.(string)
		return strings.Compare(ak, bk)
	}
	return 0
}

// knnSQL builds the query on the vec0 sidecar: vec0's KNN for l2 and cosine,
// a full scan ranked by oi_dot for dot (see DotFunction).
func knnSQL(spec *outbox.Spec, cfg *queryConfig, blob []byte, k int) (string, []any) {
	v := spec.Vec
	keyCol := "rowid"
	if spec.KeyType == outbox.KeyText {
		keyCol = "id"
	}
	var where []string
	var fargs []any
	if spec.SoftDelete != "" && !cfg.includeDeleted {
		where = append(where, outbox.DeletedColumn+" = 0")
	}
	for _, f := range cfg.filters {
		where = append(where, "("+f.sql+")")
		fargs = append(fargs, f.args...)
	}
	var sb strings.Builder
	var args []any
	col := outbox.Quote(v.Column)
	if v.Metric == outbox.MetricDot {
		fmt.Fprintf(&sb, "SELECT %s, %s(%s, ?) AS oi_score FROM %s", keyCol, DotFunction, col, outbox.Quote(v.Table))
		args = append(args, blob)
		if len(where) > 0 {
			sb.WriteString(" WHERE " + strings.Join(where, " AND "))
		}
		fmt.Fprintf(&sb, " ORDER BY oi_score DESC, %s LIMIT ?", keyCol)
		args = append(args, fargs...)
		args = append(args, k)
		return sb.String(), args
	}
	fmt.Fprintf(&sb, "SELECT %s, distance FROM %s WHERE %s MATCH ? AND k = ?", keyCol, outbox.Quote(v.Table), col)
	args = append(args, blob, k)
	for _, w := range where {
		sb.WriteString(" AND " + w)
	}
	// vec0 returns KNN rows nearest first and allows no other ORDER BY than
	// "distance" alone: equal distances are ordered by key in Go.
	args = append(args, fargs...)
	return sb.String(), args
}
