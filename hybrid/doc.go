// Package hybrid runs a vector (KNN) search and a full-text search on the
// same gorm model and fuses the two rankings with reciprocal-rank fusion
// (RRF): each model's score is the sum, over the rankings it appears in, of
// weight / (k + rank), rank counting from 1. The fusion itself is RRF, a
// function over any number of ranked key lists, usable on lists obtained
// elsewhere.
//
// It is a package of its own, above vecsink and ftssink, because it is the
// one place that needs both: each sink stays usable alone (a model with only
// a vec tag never imports the FTS5 code, and the reverse), neither sink
// depends on the other, and the fusion policy (RRF, its k, the weights) can
// evolve without touching either sidecar. It builds on the key-level
// queries vecsink.Neighbors and ftssink.Matches, so the models are loaded
// once, with one gorm query, for the fused list — not once per side.
package hybrid
