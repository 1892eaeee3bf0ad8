//go:build race

package indexer_test

// raceEnabled reports a -race build: SQLite, translated to Go, runs many
// times slower under the race detector, and the online-rebuild tests take
// fewer, longer steps there (see onlineSteps).
const raceEnabled = true
