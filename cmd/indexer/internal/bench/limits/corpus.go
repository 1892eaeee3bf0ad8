package limits

import (
	"sync"

	"github.com/outboxindexer/outboxindexer/internal/synth"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Dim is the vector size of every workload.
const Dim = 384

// BodyWords is the length of a synthetic document body.
const BodyWords = 200

// Doc is one synthetic document.
type Doc struct {
	Title, Body string
	Vec         []float32
	VecBytes    []byte // Vec as little-endian float32
}

var docCache struct {
	sync.Mutex
	docs []Doc
}

// Docs returns n deterministic documents (seed 1): ~200-word bodies from a
// 5k-word Zipf vocabulary and random 384-d unit vectors. The first n of a
// larger set are the same documents. The result is shared: do not modify it.
func Docs(n int) []Doc {
	docCache.Lock()
	defer docCache.Unlock()
	if len(docCache.docs) < n {
		g := synth.New(1, synth.DefaultVocab)
		docs := make([]Doc, n)
		for i := range docs {
			d := Doc{Title: g.Title(), Body: g.Text(BodyWords), Vec: g.Vector(Dim)}
			d.VecBytes, _ = outbox.EncodeVector(d.Vec, Dim, outbox.EncodingBinary)
			docs[i] = d
		}
		docCache.docs = docs
	}
	return docCache.docs[:n]
}

// QueryVectors returns q deterministic query vectors (another seed than the
// documents).
func QueryVectors(q int) [][]float32 {
	g := synth.New(2, synth.DefaultVocab)
	out := make([][]float32, q)
	for i := range out {
		out[i] = g.Vector(Dim)
	}
	return out
}

// QueryTerms returns q deterministic one-word queries: words of Zipf ranks
// 200–2200 of the documents' vocabulary, each in a few percent of the
// documents or less, so that the query's fixed costs are not drowned by
// bm25-ranking half the table (a top-10 word makes every query ~25 ms).
func QueryTerms(q int) []string {
	vocab := synth.New(3, synth.DefaultVocab).Vocab()
	out := make([]string, q)
	for i := range out {
		out[i] = vocab[200+(i*397)%2000]
	}
	return out
}
