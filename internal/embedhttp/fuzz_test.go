package embedhttp

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzSanitizeJSON: valid JSON passes unchanged (NaN and Infinity cannot
// occur outside its strings), and whatever SanitizeJSON returns decodes into
// vectors without a panic; where it decodes, finite numbers are kept exactly.
func FuzzSanitizeJSON(f *testing.F) {
	f.Add([]byte(`{"embeddings":[[1,2.5,-3e-2]]}`))
	f.Add([]byte(`{"embeddings":[[1,NaN,-Infinity,Infinity]]}`))
	f.Add([]byte(`{"s":"NaN\"Infinity\\"}`))
	f.Add([]byte(`[NaN`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := SanitizeJSON(b)
		if json.Valid(b) {
			require.Equal(t, b, out)
		}
		var r OllamaResponse
		if json.Unmarshal(out, &r) != nil {
			return
		}
		var plain struct{ Embeddings [][]any }
		if json.Unmarshal(out, &plain) != nil {
			return
		}
		require.Len(t, r.Embeddings, len(plain.Embeddings))
		for i, v := range plain.Embeddings {
			require.Len(t, r.Embeddings[i], len(v))
			for j, x := range v {
				got := float64(r.Embeddings[i][j])
				if x == nil {
					require.True(t, math.IsNaN(got))
				} else if f, ok := x.(float64); ok && math.Abs(f) < math.MaxFloat32 {
					require.Equal(t, float32(f), float32(got))
				}
			}
		}
	})
}
