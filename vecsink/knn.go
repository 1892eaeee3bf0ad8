package vecsink

import (
	"context"
	"database/sql"
	"fmt"
	"math"

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
// db.Table). The statement KNNSQL returns is run on db's connection (or
// transaction), then the models are loaded with one gorm query
// (WHERE key IN …) on db, so db's Preload, Select and other settings apply;
// conditions on db filter the loaded models, which can then be fewer than k.
// Keys whose source row no longer exists (deleted, not yet indexed) are
// dropped. Soft-deleted rows are excluded unless IncludeDeleted is given.
// WithJoin and WithOrderBy apply as documented there; WithSelect is refused
// (use KNNSQL).
//
// KNN sees what the indexer has applied; call the indexer's Sync first for
// read-your-writes.
//
// Errors: a query whose length is not the model's dim, or with NaN or Inf,
// or all zeros under cosine (ErrBadVector); k < 1 or k > MaxK (ErrInvalidK);
// a bad option (ErrInvalidOption); a model with no vec tag (ErrNoVec); a
// model with several vector fields and no WithField (ErrAmbiguousField); a
// WithField that names none of them (ErrUnknownField); a model never
// migrated (outbox.ErrNotRegistered).
func KNN[T any](ctx context.Context, db *gorm.DB, query []float32, k int, opts ...Option) ([]Result[T], error) {
	t, err := resolve[T](ctx, db)
	if err != nil {
		return nil, err
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
			out = append(out, Result[T]{Model: models[i], Distance: n.Distance, Chunk: n.Chunk})
		}
	}
	return out, nil
}

// resolve finds T's registry spec and checks that it has a vec sidecar.
func resolve[T any](ctx context.Context, db *gorm.DB) (*gormq.Target, error) {
	t, err := gormq.Resolve(ctx, db, new(T))
	if err != nil {
		return nil, fmt.Errorf("vecsink: knn: %w", err)
	}
	if t.Spec.Vec == nil {
		return nil, fmt.Errorf("%w: model %s (table %s) has no vec tag", ErrNoVec, t.Schema.Name, t.Table)
	}
	return t, nil
}

// Neighbors is KNN without models: it returns the primary keys (int64 or
// string) of the k nearest rows of spec's vec0 sidecar and their distances,
// nearest first. It needs no Go model type (db may be a *sql.DB, a *sql.Tx
// or a gorm ConnPool); spec usually comes from outbox.LoadSpec. The keys are
// those the indexer has applied: rows deleted since may still be returned
// (unless WithJoin or WithOrderBy is given, which join the source table).
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
	v, err := fieldSpec(spec, cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.selects) > 0 {
		return nil, fmt.Errorf("%w: WithSelect changes the shape of the rows: use KNNSQL and run it with db.Raw(sql, args...).Scan(&rows) (table %s)", ErrInvalidOption, spec.Source)
	}
	q, args, err := buildKNN(spec, cfg, query, k)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("vecsink: knn on %s: %w", v.Table, err)
	}
	defer rows.Close()
	out := make([]Neighbor, 0, k)
	seen := make(map[any]bool, k)
	for rows.Next() {
		var (
			key  any
			dist sql.NullFloat64
			ch   ChunkSpan
		)
		dest := []any{&key, &dist}
		if v.Chunked() {
			dest = append(dest, &ch.Index, &ch.Start, &ch.End)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("vecsink: knn on %s: %w", v.Table, err)
		}
		nk, err := gormq.ScanKey(key)
		if err != nil {
			return nil, fmt.Errorf("vecsink: knn on %s: %w", v.Table, err)
		}
		if seen[nk] { // a join to several rows
			continue
		}
		seen[nk] = true
		d := math.NaN()
		if dist.Valid {
			d = dist.Float64
		}
		n := Neighbor{Key: nk, Distance: d}
		if v.Chunked() {
			n.Chunk = &ch
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vecsink: knn on %s: %w", v.Table, err)
	}
	return out, nil
}
