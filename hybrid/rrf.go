package hybrid

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Fused is one result of RRF: a key, its fused score and its position in
// each input list.
type Fused[K cmp.Ordered] struct {
	Key K
	// Score is the sum, over the lists the key appears in, of
	// weight / (k + rank). Higher is better; RRF sorts by it.
	Score float64
	// Ranks holds the key's 1-based position in each input list, in the
	// order of the lists; 0 where the key is absent from a list.
	Ranks []int
}

// RRFOption configures one RRF call.
type RRFOption func(*rrfConfig)

type rrfConfig struct {
	k        float64
	weights  []float64
	limit    int
	badLimit bool
}

// RRFK sets the k constant of RRF (default DefaultRRFK, 60; finite, 0 or
// more): the larger it is, the less the top ranks dominate.
func RRFK(k float64) RRFOption { return func(c *rrfConfig) { c.k = k } }

// RRFWeights sets one weight per input list, in the order of the lists
// (default 1 each; finite, 0 or more). Their number must equal the number
// of lists. A list of weight 0 still records its ranks in Fused.Ranks but
// adds nothing to the scores.
func RRFWeights(weights ...float64) RRFOption {
	return func(c *rrfConfig) { c.weights = append([]float64(nil), weights...) }
}

// RRFLimit keeps the n best results (n >= 1; default: all of them).
func RRFLimit(n int) RRFOption {
	return func(c *rrfConfig) { c.limit, c.badLimit = n, n < 1 }
}

// RRF fuses ranked lists of keys with reciprocal-rank fusion (Cormack,
// Clarke and Büttcher, 2009): the score of a key is the sum, over the
// lists it appears in, of weight / (k + rank), rank counting from 1 within
// the list. The lists can come from anywhere (vecsink.Neighbors,
// ftssink.Matches, another index, a business ranking), in any number; they
// must be sorted best first.
//
// Results are sorted by score, highest first. Ties — equal float64 scores,
// as when two keys hold mirrored ranks in two lists of equal weight — are
// broken by key, ascending (cmp.Compare: numbers by value, strings
// byte-wise), so the output depends only on the input, never on map order.
// A key repeated within one list counts once, at its first (best)
// position. Scores are summed list by list, in the order of the lists.
//
// Errors wrap ErrInvalidOption: RRFWeights of another length than lists, a
// negative or non-finite weight or k, all weights 0, RRFLimit below 1.
// No lists, or only empty ones, give an empty result.
func RRF[K cmp.Ordered](lists [][]K, opts ...RRFOption) ([]Fused[K], error) {
	c := &rrfConfig{k: DefaultRRFK}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: RRF: %s", ErrInvalidOption, fmt.Sprintf(format, args...))
	}
	if !finite(c.k) || c.k < 0 {
		return nil, bad("RRFK(%v): want a finite k >= 0", c.k)
	}
	if c.badLimit {
		return nil, bad("RRFLimit(%d): want at least 1", c.limit)
	}
	if c.weights != nil {
		if len(c.weights) != len(lists) {
			return nil, bad("%d weights for %d lists", len(c.weights), len(lists))
		}
		sum := 0.0
		for i, w := range c.weights {
			if !finite(w) || w < 0 {
				return nil, bad("weight %d is %v: want finite weights >= 0", i, w)
			}
			sum += w
		}
		if sum == 0 && len(lists) > 0 {
			return nil, bad("every weight is 0")
		}
	}
	byKey := map[K]*Fused[K]{}
	var all []*Fused[K]
	for li, list := range lists {
		w := 1.0
		if c.weights != nil {
			w = c.weights[li]
		}
		for pos, key := range list {
			f, ok := byKey[key]
			if !ok {
				f = &Fused[K]{Key: key, Ranks: make([]int, len(lists))}
				byKey[key] = f
				all = append(all, f)
			}
			if f.Ranks[li] != 0 {
				continue // repeated in this list: the first position counts
			}
			f.Ranks[li] = pos + 1
			f.Score += w / (c.k + float64(pos+1))
		}
	}
	slices.SortFunc(all, func(a, b *Fused[K]) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if c.limit > 0 && len(all) > c.limit {
		all = all[:c.limit]
	}
	out := make([]Fused[K], len(all))
	for i, f := range all {
		out[i] = *f
	}
	return out, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
