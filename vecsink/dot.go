package vecsink

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ncruces/go-sqlite3"
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
// The function is registered on every connection of the ncruces/go-sqlite3
// driver opened after this package is initialised (sqlite3.AutoExtension),
// deterministic and innocuous, so it is also usable in the application's own
// SQL.
const DotFunction = "oi_dot"

func init() {
	sqlite3.AutoExtension(func(c *sqlite3.Conn) error {
		return c.CreateFunction(DotFunction, 2, sqlite3.DETERMINISTIC|sqlite3.INNOCUOUS, dotFunc)
	})
}

// dotFunc implements oi_dot. The second argument is usually the bound query
// vector, constant for the statement: its decoded form is kept as aux data.
func dotFunc(ctx sqlite3.Context, arg ...sqlite3.Value) {
	if arg[0].Type() == sqlite3.NULL || arg[1].Type() == sqlite3.NULL {
		ctx.ResultNull()
		return
	}
	q, ok := ctx.GetAuxData(1).([]float32)
	if !ok {
		var err error
		if q, err = vectorArg(arg[1]); err != nil {
			ctx.ResultError(err)
			return
		}
		ctx.SetAuxData(1, q)
	}
	var s float64
	if arg[0].Type() == sqlite3.BLOB {
		b := arg[0].RawBlob()
		if len(b) != 4*len(q) {
			ctx.ResultError(fmt.Errorf("%s: vectors of %d and %d bytes", DotFunction, len(b), 4*len(q)))
			return
		}
		for i, y := range q {
			x := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			s += float64(x) * float64(y)
		}
		ctx.ResultFloat(s)
		return
	}
	v, err := vectorArg(arg[0])
	if err != nil {
		ctx.ResultError(err)
		return
	}
	if len(v) != len(q) {
		ctx.ResultError(fmt.Errorf("%s: vectors of %d and %d dimensions", DotFunction, len(v), len(q)))
		return
	}
	for i, x := range v {
		s += float64(x) * float64(q[i])
	}
	ctx.ResultFloat(s)
}

func vectorArg(v sqlite3.Value) ([]float32, error) {
	var b []byte
	switch v.Type() {
	case sqlite3.BLOB:
		b = v.RawBlob()
	case sqlite3.TEXT:
		b = v.RawText()
	default:
		return nil, fmt.Errorf("%s: argument of type %s is not a vector", DotFunction, v.Type())
	}
	f, err := outbox.DecodeVector(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", DotFunction, err)
	}
	return f, nil
}
