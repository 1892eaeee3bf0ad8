package synth

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, b := New(7, 0), New(7, 0)
	require.Len(t, a.Vocab(), DefaultVocab)
	require.Equal(t, a.Text(200), b.Text(200))
	require.Equal(t, a.Vector(8), b.Vector(8))
	require.NotEqual(t, New(8, 0).Text(50), New(7, 0).Text(50))
}

func TestZipfSkew(t *testing.T) {
	t.Parallel()
	g := New(1, 0)
	counts := map[string]int{}
	for range 20000 {
		counts[g.Word()]++
	}
	v := g.Vocab()
	require.Greater(t, counts[v[0]], counts[v[100]]*5, "rank 0 must be far more frequent than rank 100")
}

func TestEmbedSimilarity(t *testing.T) {
	t.Parallel()
	dot := func(a, b []float32) (s float32) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	q := Embed("ocean sailing harbor", 64)
	near := Embed("sailing on the ocean near the harbor", 64)
	far := Embed("baking bread with cheese", 64)
	require.InDelta(t, 1, dot(q, q), 1e-5)
	require.Greater(t, dot(q, near), dot(q, far))
	require.Equal(t, make([]float32, 4), Embed("", 4))
}
