// Package vecsink owns the sqlite-vec vec0 sidecar of an indexed model: its
// DDL, how the indexer applies changes to it, the [Embedding] field type, and
// nearest-neighbour queries that return gorm models.
package vecsink
