package hybrid_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/hybrid"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

func mustRRF[K int64 | string](t *testing.T, lists [][]K, opts ...hybrid.RRFOption) []hybrid.Fused[K] {
	t.Helper()
	got, err := hybrid.RRF(lists, opts...)
	require.NoError(t, err)
	return got
}

func keysOf[K int64 | string](fs []hybrid.Fused[K]) []K {
	var out []K
	for _, f := range fs {
		out = append(out, f.Key)
	}
	return out
}

// The seed's fusion tests, on our API.
func TestRRFSeedScenarios(t *testing.T) {
	t.Parallel()
	// overlapping keys accumulate
	got := mustRRF(t, [][]int64{{1, 2, 3}, {1, 4, 2}})
	require.Len(t, got, 4)
	require.Equal(t, int64(1), got[0].Key)
	require.InDelta(t, 2.0/61, got[0].Score, 1e-12)
	require.Equal(t, []int64{1, 2, 4, 3}, keysOf(got))
	require.InDelta(t, 1.0/62+1.0/63, got[1].Score, 1e-12)
	// disjoint keys tie by rank
	got = mustRRF(t, [][]int64{{10, 20}, {30, 40}})
	require.Equal(t, got[0].Score, got[1].Score)
	require.Equal(t, got[2].Score, got[3].Score)
	// weights scale contributions
	got = mustRRF(t, [][]int64{{1}, {2}}, hybrid.RRFWeights(1, 10))
	require.Equal(t, int64(2), got[0].Key)
	// limit
	got = mustRRF(t, [][]int64{{1, 2, 3, 4, 5}}, hybrid.RRFLimit(2))
	require.Equal(t, []int64{1, 2}, keysOf(got))
	// empty inputs
	require.Empty(t, mustRRF(t, [][]int64{nil, nil}))
	require.Empty(t, mustRRF[int64](t, nil))
	// a smaller k widens the gap between ranks
	tight := mustRRF(t, [][]int64{{1, 2}}, hybrid.RRFK(10))
	loose := mustRRF(t, [][]int64{{1, 2}}, hybrid.RRFK(60))
	require.Greater(t, tight[0].Score/tight[1].Score, loose[0].Score/loose[1].Score)
	// weight count mismatch
	_, err := hybrid.RRF([][]int64{{1}, {2}}, hybrid.RRFWeights(1))
	require.ErrorIs(t, err, hybrid.ErrInvalidOption)
	require.ErrorContains(t, err, "1 weights for 2 lists")
	// deterministic tie-break: by key, ascending
	first := mustRRF(t, [][]int64{{10, 20, 30}, {40, 50, 60}})
	for range 16 {
		require.Equal(t, first, mustRRF(t, [][]int64{{10, 20, 30}, {40, 50, 60}}))
	}
	require.Equal(t, []int64{10, 40, 20, 50, 30, 60}, keysOf(first))
	// string keys; symmetric inputs tie and sort by key
	s := mustRRF(t, [][]string{{"beta", "alpha"}, {"alpha", "beta"}})
	require.Equal(t, []string{"alpha", "beta"}, keysOf(s))
	require.Equal(t, s[0].Score, s[1].Score)
}

func TestRRFRanksAndRules(t *testing.T) {
	t.Parallel()
	got := mustRRF(t, [][]string{{"a", "b", "a", "c"}, {}, {"c", "d"}}, hybrid.RRFK(0), hybrid.RRFWeights(1, 5, 2))
	byKey := map[string]hybrid.Fused[string]{}
	for _, f := range got {
		byKey[f.Key] = f
	}
	require.Equal(t, []int{1, 0, 0}, byKey["a"].Ranks, "a repeated key counts at its first position")
	require.Equal(t, 1.0, byKey["a"].Score)
	require.Equal(t, []int{4, 0, 1}, byKey["c"].Ranks)
	require.Equal(t, 1.0/4+2.0/1, byKey["c"].Score)
	require.Equal(t, []string{"c", "a", "d", "b"}, keysOf(got))
	// a list of weight 0 records ranks but adds nothing
	gotW := mustRRF(t, [][]int64{{1, 2}, {2}}, hybrid.RRFWeights(1, 0))
	require.Equal(t, []int64{1, 2}, keysOf(gotW))
	require.Equal(t, []int{2, 1}, gotW[1].Ranks)
	for name, opts := range map[string][]hybrid.RRFOption{
		"k < 0":        {hybrid.RRFK(-1)},
		"k NaN":        {hybrid.RRFK(math.NaN())},
		"k Inf":        {hybrid.RRFK(math.Inf(1))},
		"weight < 0":   {hybrid.RRFWeights(1, -1)},
		"weight NaN":   {hybrid.RRFWeights(1, math.NaN())},
		"all weight 0": {hybrid.RRFWeights(0, 0)},
		"limit 0":      {hybrid.RRFLimit(0)},
	} {
		_, err := hybrid.RRF([][]int64{{1}, {2}}, opts...)
		require.ErrorIs(t, err, hybrid.ErrInvalidOption, name)
	}
	// independent of nothing but the input: reversing the lists' order
	// changes no score when weights are equal
	a := mustRRF(t, [][]int64{{5, 3, 9, 1}, {3, 7, 5}})
	b := mustRRF(t, [][]int64{{3, 7, 5}, {5, 3, 9, 1}})
	require.Equal(t, keysOf(a), keysOf(b))
}

// TestSearchIsRRFOfBothSides checks that hybrid.Search returns the fusion
// RRF computes on the key lists of vecsink.Neighbors and ftssink.Matches.
func TestSearchIsRRFOfBothSides(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(41, 42))
	sp := spec("docs", "id", outbox.KeyInteger, outbox.ModeInTable)
	seed(t, db, &doc{}, sp, 200, func(i int) any { return int64(i) }, rng)
	q := []float32{0.5, -1, 0.25, 1}
	ns, err := vecsink.Neighbors(ctx, sqlDB, sp, q, 30)
	require.NoError(t, err)
	ms, err := ftssink.Matches(ctx, sqlDB, sp, ftssink.Term("beta"), ftssink.WithLimit(30))
	require.NoError(t, err)
	var vk, tk []int64
	for _, n := range ns {
		vk = append(vk, n.Key.(int64))
	}
	for _, m := range ms {
		tk = append(tk, m.Key.(int64))
	}
	want := mustRRF(t, [][]int64{vk, tk}, hybrid.RRFK(20), hybrid.RRFWeights(2, 1), hybrid.RRFLimit(15))
	got, err := hybrid.Search[doc](ctx, db, q, ftssink.Term("beta"), hybrid.WithCandidates(30), hybrid.WithRRFK(20), hybrid.WithWeights(2, 1), hybrid.WithLimit(15))
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i, r := range got {
		require.Equal(t, want[i].Key, r.Model.ID, "rank %d", i)
		require.Equal(t, want[i].Score, r.Score)
		require.Equal(t, want[i].Ranks, []int{r.VecRank, r.TextRank})
	}
}

// TestSearchSideFilters: both sides filter on the language (vec0 metadata
// inside the KNN, the source column before the full-text limit), so every
// fused result is in that language and the text side still contributes a
// full candidate list.
func TestSearchSideFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(43, 44))
	sp := spec("docs", "id", outbox.KeyInteger, outbox.ModeExternal)
	seed(t, db, &doc{}, sp, 300, func(i int) any { return int64(i) }, rng)
	res, err := hybrid.Search[doc](ctx, db, []float32{1, 0, 0, 0}, ftssink.Term("alpha"),
		hybrid.WithCandidates(10), hybrid.WithLimit(40),
		hybrid.WithVecOptions(vecsink.WithFilter("lang = ?", "fr")),
		hybrid.WithTextOptions(ftssink.WithFilter("docs.lang = ?", "fr")))
	require.NoError(t, err)
	text := 0
	for _, r := range res {
		require.Equal(t, "fr", r.Model.Lang)
		if r.TextRank > 0 {
			text++
		}
	}
	ms, err := ftssink.Matches(ctx, sqlDB, sp, ftssink.Term("alpha"), ftssink.WithLimit(1000))
	require.NoError(t, err)
	require.Greater(t, len(ms), 20, "enough matches in both languages")
	require.Equal(t, 10, text, "the filtered text side still fills its 10 candidates")
}
