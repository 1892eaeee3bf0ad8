package vecsink

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
)

// Names of the statement that KNNSQL returns, for WithSelect, WithJoin and
// WithOrderBy fragments and for the fields of the struct the rows are
// scanned into.
const (
	// NeighborsCTE is the common table expression holding the k nearest
	// rows: columns oi_key (the primary key) and distance.
	NeighborsCTE = "oi_knn"
	// DistanceColumn is the result column holding the distance, with the
	// meaning of Result.Distance (NULL where Result.Distance is NaN).
	DistanceColumn = "distance"
	// ChunkIndexColumn is, for a chunked vector field, the result column
	// holding the index of the row's best chunk; its span is in the
	// columns chunk_start and chunk_end (see ChunkSpan).
	ChunkIndexColumn = "chunk_index"
)

// DefaultChunkFetch is how many chunks per requested row a KNN query of a
// chunked field fetches from vec0 (at most MaxK) before keeping each row's
// best chunk; see WithChunkFetch.
const DefaultChunkFetch = 8

// KNNSQL returns the statement and arguments that KNN runs for the same
// arguments and options, without running it: for db.Raw(sql,
// args...).Scan(&rows), a CTE of a larger query, or a report. It reads the
// model's spec from the registry on db (hence ctx) and validates everything
// KNN validates, with the same errors; the query vector and every option
// value are bound arguments, never part of the SQL text.
//
// The statement returns, nearest first:
//
//	WITH oi_knn(oi_key, distance) AS MATERIALIZED (<the k nearest rows of the vec0 sidecar>)
//	SELECT oi_knn.oi_key AS "<primary key column>", oi_knn.distance AS distance [, WithSelect columns]
//	FROM oi_knn [CROSS JOIN "<source table>" ON "<source table>"."<key>" = oi_knn.oi_key] [WithJoin clauses]
//	ORDER BY [WithOrderBy terms,] oi_knn.distance NULLS LAST, oi_knn.oi_key
//
// so rows scan into a struct with the model's primary key field, a
// Distance float64 and fields for the WithSelect columns. For a chunked
// vector field (chunk=N) the CTE ranks rows by their best chunk, each row
// once, and the statement also returns chunk_index, chunk_start and
// chunk_end after the distance. The source table
// is joined, under its own name, whenever WithSelect, WithJoin or
// WithOrderBy is given; soft-deleted rows are excluded (vec0's deleted
// flag) unless IncludeDeleted is given, as in KNN. Unlike KNN, the rows
// are not re-checked against db's conditions or scopes.
func KNNSQL[T any](ctx context.Context, db *gorm.DB, query []float32, k int, opts ...Option) (string, []any, error) {
	t, err := resolve[T](ctx, db)
	if err != nil {
		return "", nil, err
	}
	return buildKNN(t.Spec, newQueryConfig(opts), query, k)
}

// buildKNN validates the arguments and builds the statement of KNN, KNNSQL
// and Neighbors (see KNNSQL). The k nearest rows come from vec0's KNN for
// l2 and cosine, and from a full scan ranked by oi_dot for dot (see
// DotFunction); the CTE is materialized so that no join or ordering can
// reach into the vec0 query.
func buildKNN(spec *outbox.Spec, cfg *queryConfig, query []float32, k int) (string, []any, error) {
	v, err := fieldSpec(spec, cfg)
	if err != nil {
		return "", nil, err
	}
	spec = spec.ForVec(v)
	if err = cfg.validate(); err != nil {
		return "", nil, fmt.Errorf("%w (table %s)", err, spec.Source)
	}
	if k < 1 || k > MaxK {
		return "", nil, fmt.Errorf("%w: k=%d for table %s, want 1..%d", ErrInvalidK, k, spec.Source, MaxK)
	}
	if len(query) != v.Dim {
		return "", nil, fmt.Errorf("%w: query vector has %d dimensions, table %s has dim=%d", ErrBadVector, len(query), spec.Source, v.Dim)
	}
	zero := true
	for i, x := range query {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return "", nil, fmt.Errorf("%w: query vector element %d is %v", ErrBadVector, i, x)
		}
		if x != 0 {
			zero = false
		}
	}
	if zero && v.Metric == outbox.MetricCosine {
		return "", nil, fmt.Errorf("%w: query vector is all zeros: no direction under metric=cosine (table %s)", ErrBadVector, spec.Source)
	}
	blob, err := outbox.EncodeVector(query, v.Dim, outbox.EncodingBinary)
	if err != nil {
		return "", nil, err
	}

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
	// The live generation's table (see outbox.GenName) is aliased to the
	// sidecar's name, so that caller fragments that name it keep working.
	col, vt := outbox.Quote(v.Column), outbox.Quote(v.Table)
	if live := v.Live(); live != v.Table {
		vt = outbox.Quote(live) + " AS " + vt
	}
	chunked := v.Chunked()
	if chunked {
		fmt.Fprintf(&sb, "WITH %s(oi_key, %s, oi_chunk, oi_chunk_start, oi_chunk_end) AS MATERIALIZED (", NeighborsCTE, DistanceColumn)
	} else {
		fmt.Fprintf(&sb, "WITH %s(oi_key, %s) AS MATERIALIZED (", NeighborsCTE, DistanceColumn)
	}
	if chunked {
		// One vec0 row per chunk (rowid key*MaxChunks+i): fetch the nearest
		// chunks, keep each row's best one, and rank rows by it.
		rk := fmt.Sprintf("((rowid - (rowid & %[1]d)) / %[2]d)", outbox.MaxChunks-1, outbox.MaxChunks)
		fmt.Fprintf(&sb, "SELECT oi_rk, distance, oi_ci, %[1]s, %[2]s FROM (SELECT %[3]s AS oi_rk, (rowid & %[4]d) AS oi_ci, distance, %[1]s, %[2]s, "+
			"row_number() OVER (PARTITION BY %[3]s ORDER BY distance, rowid) AS oi_rn FROM %[5]s WHERE %[6]s MATCH ? AND k = ?",
			outbox.ChunkStartColumn, outbox.ChunkEndColumn, rk, outbox.MaxChunks-1, vt, col)
		args = append(args, blob, min(MaxK, k*cfg.chunkFetchOrDefault()))
		for _, w := range where {
			sb.WriteString(" AND " + w)
		}
		args = append(args, fargs...)
		sb.WriteString(") WHERE oi_rn = 1 ORDER BY distance, oi_rk LIMIT ?")
		args = append(args, k)
	} else if v.Metric == outbox.MetricDot {
		// vec0 has no dot metric: negate the inner product so that
		// smaller is closer, as for the other metrics.
		fmt.Fprintf(&sb, "SELECT %s, -%s(%s, ?) AS oi_d FROM %s", keyCol, DotFunction, col, vt)
		args = append(args, blob)
		if len(where) > 0 {
			sb.WriteString(" WHERE " + strings.Join(where, " AND "))
		}
		fmt.Fprintf(&sb, " ORDER BY oi_d NULLS LAST, %s LIMIT ?", keyCol)
		args = append(args, fargs...)
		args = append(args, k)
	} else {
		fmt.Fprintf(&sb, "SELECT %s, distance FROM %s WHERE %s MATCH ? AND k = ?", keyCol, vt, col)
		args = append(args, blob, k)
		for _, w := range where {
			sb.WriteString(" AND " + w)
		}
		args = append(args, fargs...)
	}
	fmt.Fprintf(&sb, ") SELECT %[1]s.oi_key AS %[2]s, %[1]s.%[3]s AS %[3]s", NeighborsCTE, outbox.Quote(spec.Key), DistanceColumn)
	if chunked {
		fmt.Fprintf(&sb, ", %[1]s.oi_chunk AS %[2]s, %[1]s.oi_chunk_start AS %[3]s, %[1]s.oi_chunk_end AS %[4]s", NeighborsCTE, ChunkIndexColumn, outbox.ChunkStartColumn, outbox.ChunkEndColumn)
	}
	for _, s := range cfg.selects {
		sb.WriteString(", " + s)
	}
	sb.WriteString(" FROM " + NeighborsCTE)
	if cfg.shaped() {
		src := outbox.Quote(spec.Source)
		fmt.Fprintf(&sb, " CROSS JOIN %[1]s ON %[1]s.%[2]s = %[3]s.oi_key", src, outbox.Quote(spec.Key), NeighborsCTE)
	}
	for _, j := range cfg.joins {
		sb.WriteString(" " + j.sql)
		args = append(args, j.args...)
	}
	sb.WriteString(" ORDER BY ")
	for _, o := range cfg.orders {
		sb.WriteString(o.sql + ", ")
		args = append(args, o.args...)
	}
	// vec0 returns the nearest first but leaves equal distances in its own
	// order: the key breaks ties, NULL (NaN) distances go last.
	fmt.Fprintf(&sb, "%[1]s.%[2]s NULLS LAST, %[1]s.oi_key", NeighborsCTE, DistanceColumn)
	return sb.String(), args, nil
}
