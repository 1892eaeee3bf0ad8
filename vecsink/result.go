package vecsink

// Result is one nearest neighbour returned by KNN: the model and its
// distance to the query vector. Results are sorted by Distance, nearest
// first.
//
// Distance is what sqlite-vec computes for the l2 metric (Euclidean
// distance) and the cosine metric (1 − cosine similarity; NaN when the stored
// vector is all zeros). For the dot metric it is the negated inner product
// −(a·b), computed in float64, so that smaller is always closer.
type Result[T any] struct {
	Model    T
	Distance float64
	// Chunk is, for a vector field stored in chunks (chunk=N), the row's
	// chunk nearest to the query, by which the row is ranked; nil for
	// other fields.
	Chunk *ChunkSpan
}

// Neighbor is one nearest neighbour returned by Neighbors: the primary key
// of the source row (int64 for integer keys, string for text keys) and its
// distance, with the same meaning as Result.Distance.
type Neighbor struct {
	Key      any
	Distance float64
	Chunk    *ChunkSpan // the matched chunk of a chunked field, nil otherwise
}
