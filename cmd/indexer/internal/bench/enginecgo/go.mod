module github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench/enginecgo

go 1.26.0

require (
	github.com/asg017/sqlite-vec-go-bindings v0.1.6
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/outboxindexer/outboxindexer v0.0.0
)

replace github.com/outboxindexer/outboxindexer => ../../../../..
