package engine_test

import (
	"database/sql"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

// sqlite-vec's float32 distances, written out as its C source computes them
// (sqlite-vec.c v0.1.6: l2_sqr_float, l1_f32, distance_cosine_float): one
// accumulator per sum, in index order, each product rounded to float32 before
// it is added, sqrt in double precision. Every engine must return exactly
// these bits: the cgo engine runs that C code, the pure-Go engine its own
// implementation of the loops (internal/engine/vec/distance.go), and a KNN
// must rank and report the same distances on both.
func refCosine(a, b []float32) float32 {
	var dot, am, bm float32
	for i := range a {
		dot += float32(a[i] * b[i])
		am += float32(a[i] * a[i])
		bm += float32(b[i] * b[i])
	}
	return float32(1 - float64(dot)/(math.Sqrt(float64(am))*math.Sqrt(float64(bm))))
}

func refL2(a, b []float32) float32 {
	var s float32
	for i := range a {
		d := a[i] - b[i]
		s += float32(d * d)
	}
	return float32(math.Sqrt(float64(s)))
}

func refL1(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i]) - float64(b[i]))
	}
	return s
}

// f32Blob is v in the log's binary vector encoding: little-endian float32,
// what vec0 takes.
func f32Blob(t *testing.T, v []float32) []byte {
	b, err := outbox.EncodeVector(v, len(v), outbox.EncodingBinary)
	require.NoError(t, err)
	return b
}

// TestVecDistancesAreExact compares sqlite-vec's scalar distance functions
// and a vec0 KNN with the C definitions above, bit for bit, over vectors of
// awkward sizes (1, odd, not a multiple of any unrolling) and values spread
// over many magnitudes, where any change of summation order shows.
func TestVecDistancesAreExact(t *testing.T) {
	t.Parallel()
	db, err := sql.Open(engine.DriverName, engine.DSN(testdb.Path(t)))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })

	rng := rand.New(rand.NewPCG(1, 2))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-3)))
		}
		return v
	}
	for _, n := range []int{1, 2, 3, 7, 16, 17, 383, 384, 1025} {
		for range 20 {
			a, b := vec(n), vec(n)
			var cos, l2 float32
			var l1 float64
			require.NoError(t, db.QueryRow(`SELECT vec_distance_cosine(?, ?), vec_distance_l2(?, ?), vec_distance_l1(?, ?)`,
				f32Blob(t, a), f32Blob(t, b), f32Blob(t, a), f32Blob(t, b), f32Blob(t, a), f32Blob(t, b)).Scan(&cos, &l2, &l1))
			require.Equal(t, math.Float32bits(refCosine(a, b)), math.Float32bits(cos), "cosine, %d dimensions", n)
			require.Equal(t, math.Float32bits(refL2(a, b)), math.Float32bits(l2), "l2, %d dimensions", n)
			require.Equal(t, math.Float64bits(refL1(a, b)), math.Float64bits(l1), "l1, %d dimensions", n)
		}
	}

	// The same through vec0's KNN, which calls the distance loops on vectors
	// it reads out of its chunks rather than on bound parameters.
	const dims, rows = 33, 300
	for _, metric := range []string{"cosine", "l2", "l1"} {
		_, err := db.Exec(`CREATE VIRTUAL TABLE knn_` + metric + ` USING vec0(embedding float[33] distance_metric=` + metric + `)`)
		require.NoError(t, err)
		stored := make([][]float32, rows+1)
		for id := 1; id <= rows; id++ {
			stored[id] = vec(dims)
			_, err := db.Exec(`INSERT INTO knn_`+metric+`(rowid, embedding) VALUES (?, ?)`, id, f32Blob(t, stored[id]))
			require.NoError(t, err)
		}
		q := vec(dims)
		res, err := db.Query(`SELECT rowid, distance FROM knn_`+metric+` WHERE embedding MATCH ? AND k = 25`, f32Blob(t, q))
		require.NoError(t, err)
		n := 0
		for res.Next() {
			var id int
			var got float64
			require.NoError(t, res.Scan(&id, &got))
			var want float64
			switch metric {
			case "cosine":
				want = float64(refCosine(stored[id], q))
			case "l2":
				want = float64(refL2(stored[id], q))
			case "l1":
				want = float64(float32(refL1(stored[id], q)))
			}
			require.Equal(t, math.Float64bits(want), math.Float64bits(got), "%s KNN distance of rowid %d", metric, id)
			n++
		}
		require.NoError(t, res.Err())
		require.Equal(t, 25, n)
	}
}
