// Package synth generates deterministic synthetic data for the demo, tests and
// benchmarks: documents drawn from a Zipf-distributed vocabulary and
// embeddings computed from the text by feature hashing, so that texts sharing
// words have nearby vectors. Everything is seeded: the same seed gives the
// same data on every machine.
package synth

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
)

// Generator produces documents and embeddings. It is not safe for concurrent
// use.
type Generator struct {
	rng   *rand.Rand
	zipf  *rand.Zipf
	vocab []string
}

// DefaultVocab is the vocabulary size used when New is given 0.
const DefaultVocab = 5000

// syllables build pronounceable, deterministic words.
var syllables = strings.Fields(`ka lo mi ne ru sa ti vo ze ba de fi go hu ja ke li mo nu pa qui ra se to un ve wi xa yo zu
 an el in on ur ar er ir or as es is os us al il ol ul am em im om um`)

// Topic words come first in the vocabulary, so that they are frequent and
// make readable demo queries.
var topics = strings.Fields(`ocean river mountain forest desert city garden sailing climbing
 cooking baking music guitar piano painting poetry history science physics
 chemistry biology astronomy planet star galaxy robot engine train bicycle
 coffee tea bread cheese apple winter summer storm rain snow sun moon
 library museum theater market harbor bridge castle village island volcano`)

// New returns a generator with the given seed and vocabulary size.
func New(seed uint64, vocabSize int) *Generator {
	if vocabSize <= 0 {
		vocabSize = DefaultVocab
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &Generator{rng: rng}
	seen := map[string]bool{}
	for _, w := range topics {
		if len(g.vocab) == vocabSize {
			break
		}
		seen[w] = true
		g.vocab = append(g.vocab, w)
	}
	wr := rand.New(rand.NewPCG(42, 4242)) // the vocabulary itself does not depend on seed
	for len(g.vocab) < vocabSize {
		n := 2 + wr.IntN(3)
		var b strings.Builder
		for range n {
			b.WriteString(syllables[wr.IntN(len(syllables))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			g.vocab = append(g.vocab, w)
		}
	}
	g.zipf = rand.NewZipf(rng, 1.07, 2, uint64(len(g.vocab)-1))
	return g
}

// Vocab returns the vocabulary, most frequent word first.
func (g *Generator) Vocab() []string { return g.vocab }

// Word returns one word drawn from the Zipf distribution.
func (g *Generator) Word() string { return g.vocab[g.zipf.Uint64()] }

// Text returns n words separated by spaces.
func (g *Generator) Text(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(g.Word())
	}
	return b.String()
}

// Title returns a short title of 3 to 6 words.
func (g *Generator) Title() string { return g.Text(3 + g.rng.IntN(4)) }

// Vector returns a random unit vector of dim dimensions.
func (g *Generator) Vector(dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(g.rng.NormFloat64())
	}
	normalize(v)
	return v
}

// Embed maps text to a unit vector of dim dimensions by feature hashing its
// lower-cased words: deterministic, needs no model weights, and texts that
// share words get a small cosine distance.
func Embed(text string, dim int) []float32 {
	v := make([]float32, dim)
	for _, w := range strings.Fields(strings.ToLower(text)) {
		h := fnv.New64a()
		h.Write([]byte(w))
		x := h.Sum64()
		sign := float32(1)
		if x>>63 == 1 {
			sign = -1
		}
		v[x%uint64(dim)] += sign
		v[(x>>20)%uint64(dim)] += sign * 0.5
	}
	normalize(v)
	return v
}

func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	n := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= n
	}
}
