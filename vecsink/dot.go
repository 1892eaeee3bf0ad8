package vecsink

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// DotFunction is the SQL function that KNN uses for the dot metric:
// oi_dot(a, b) returns the inner product of two vectors (little-endian
// float32 BLOBs, or JSON arrays) as a float64 sum, NULL if either is NULL, and
// an error if their lengths differ.
//
// sqlite-vec v0.1.6 has neither distance_metric=dot nor vec_distance_dot, so
// the vec0 sidecar of a dot model is declared with metric l2 (its vectors are
// stored unchanged) and KNN ranks it with
//
//	SELECT key, oi_dot(embedding, ?) AS oi_score FROM <vec0> WHERE … ORDER BY oi_score DESC LIMIT k
//
// an exact full scan: every live row's vector is read and multiplied, so the
// cost is O(rows × dim) per query — the same order as vec0's own brute-force
// KNN for l2 and cosine, plus one Go call per row. The result equals a
// brute-force inner-product ranking, ties broken by key.
//
// The function is registered on every connection of the engine's driver
// opened after this package is initialised (engine.RegisterFunction),
// deterministic and innocuous, so it is also usable in the application's own
// SQL.
const DotFunction = "oi_dot"

func init() {
	engine.RegisterFunction(DotFunction, 2, dot)
}

// dot implements oi_dot. Two BLOBs (the usual case: a stored vector and the
// bound query vector) are multiplied in place, without decoding either.
func dot(args []any) (any, error) {
	if args[0] == nil || args[1] == nil {
		return nil, nil
	}
	a, aBlob := args[0].([]byte)
	b, bBlob := args[1].([]byte)
	// A query BLOB that could be JSON or is no float32 vector takes the
	// decoding path, which says so.
	if aBlob && bBlob && len(b)%4 == 0 && (len(b) == 0 || b[0] != '[') {
		if len(a) != len(b) {
			return nil, fmt.Errorf("%s: vectors of %d and %d bytes", DotFunction, len(a), len(b))
		}
		var s float64
		for i := 0; i < len(a); i += 4 {
			x := math.Float32frombits(binary.LittleEndian.Uint32(a[i:]))
			y := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
			s += float64(x) * float64(y)
		}
		return s, nil
	}
	v, err := vectorArg(args[0])
	if err != nil {
		return nil, err
	}
	q, err := vectorArg(args[1])
	if err != nil {
		return nil, err
	}
	if len(v) != len(q) {
		return nil, fmt.Errorf("%s: vectors of %d and %d dimensions", DotFunction, len(v), len(q))
	}
	var s float64
	for i, x := range v {
		s += float64(x) * float64(q[i])
	}
	return s, nil
}

func vectorArg(v any) ([]float32, error) {
	var b []byte
	switch v := v.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return nil, fmt.Errorf("%s: argument of type %T is not a vector", DotFunction, v)
	}
	f, err := outbox.DecodeVector(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", DotFunction, err)
	}
	return f, nil
}
