package hybrid_test

import (
	"fmt"

	"github.com/outboxindexer/outboxindexer/hybrid"
)

func ExampleRRF() {
	// Three rankings of the same products from different places: a vector
	// search, a full-text search and the sales figures.
	vector := []string{"kettle", "teapot", "mug"}
	text := []string{"teapot", "kettle", "strainer"}
	sales := []string{"mug", "teapot"}
	fused, err := hybrid.RRF([][]string{vector, text, sales},
		hybrid.RRFK(10), hybrid.RRFWeights(1, 1, 0.5), hybrid.RRFLimit(4))
	if err != nil {
		panic(err)
	}
	for _, f := range fused {
		fmt.Printf("%-8s %.4f ranks %v\n", f.Key, f.Score, f.Ranks)
	}
	// kettle and teapot's vector and text ranks mirror each other; the
	// sales list decides. Exact ties would go to the smaller key.
	// Output:
	// teapot   0.2081 ranks [2 1 2]
	// kettle   0.1742 ranks [1 2 0]
	// mug      0.1224 ranks [3 0 1]
	// strainer 0.0769 ranks [0 3 0]
}
