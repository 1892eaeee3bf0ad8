package vec

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The in-place path (aligned []float32 views of the module's memory) and the
// byte-wise path (unaligned addresses, big-endian hosts) give the same bits;
// internal/engine's TestVecDistancesAreExact checks the values themselves
// against sqlite-vec's C definitions through SQL on every engine.
func TestDistancePathsAgree(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int32{0, 1, 5, 384} {
		mem := make([]byte, 8*int(n)+16)
		m := &Module{memory: &mem}
		a, b := int32(4), int32(4+4*n+4) // aligned
		ua, ub := a+1, b+2               // unaligned copies of the same vectors
		for i := range n {
			x, y := float32(rng.NormFloat64()), float32(rng.NormFloat64()*100)
			binary.LittleEndian.PutUint32(mem[a+4*i:], math.Float32bits(x))
			binary.LittleEndian.PutUint32(mem[b+4*i:], math.Float32bits(y))
		}
		cos, l2, l1 := m._oi_cosine_f32(a, b, n), m._oi_l2_f32(a, b, n), m._oi_l1_f32(a, b, n)
		copy(mem[ub:], mem[b:b+4*n])
		copy(mem[ua:], mem[a:a+4*n])
		require.Equal(t, math.Float32bits(cos), math.Float32bits(m._oi_cosine_f32(ua, ub, n)), "cosine, n=%d", n)
		require.Equal(t, math.Float32bits(l2), math.Float32bits(m._oi_l2_f32(ua, ub, n)), "l2, n=%d", n)
		require.Equal(t, math.Float64bits(l1), math.Float64bits(m._oi_l1_f32(ua, ub, n)), "l1, n=%d", n)
	}
	mem := make([]byte, 16)
	m := &Module{memory: &mem}
	require.Panics(t, func() { m._oi_cosine_f32(0, 8, 4) }, "a vector beyond the memory traps")
}
