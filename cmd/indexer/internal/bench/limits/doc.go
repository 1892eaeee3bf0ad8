// Package limits holds what the benchmark harness measures on the engine
// itself, with no product code in the way: the seeded synthetic corpus, a
// plain source table with its vec0 and FTS5 sidecars, and the raw SQL that
// writes, indexes and queries them.
//
// It depends on database/sql only (no driver, no gorm), so the same code
// runs on this product's pure-Go engine inside `indexer bench` and on
// mattn/go-sqlite3 with sqlite-vec through cgo in the separate enginecgo
// module: the engine-context figures (target 12) compare one engine with
// the other on identical work.
package limits
