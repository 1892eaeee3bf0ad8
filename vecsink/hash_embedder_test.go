package vecsink_test

import (
	"context"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/synth"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

func TestHashEmbedder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := vecsink.HashEmbedder(64)
	require.Equal(t, 64, h.Dim())
	got, err := h.Embed(ctx, []string{"Ocean sailing harbor", "  ", "ocean sailing HARBOR"})
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, synth.Embed("ocean sailing harbor", 64), got[0], "the demo's vectors")
	require.Equal(t, got[0], got[2], "case does not matter")
	basis := make([]float32, 64)
	basis[0] = 1
	require.Equal(t, basis, got[1], "a text without words gets a unit vector, usable under cosine")

	one, err := vecsink.HashEmbedder(1).Embed(ctx, []string{"a", "b", "c d"})
	require.NoError(t, err)
	for _, v := range one {
		require.NotEqual(t, float32(0), v[0])
	}

	_, err = vecsink.HashEmbedder(0).Embed(ctx, []string{"a"})
	require.ErrorIs(t, err, vecsink.ErrInvalidOption)
	require.ErrorContains(t, err, "HashEmbedder(0)")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = h.Embed(cctx, []string{"a"})
	require.ErrorIs(t, err, context.Canceled)
}
