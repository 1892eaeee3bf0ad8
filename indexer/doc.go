// Package indexer applies the outbox (table oi_events) to the vec0 and FTS5
// sidecars of every table registered in oi_registry, exactly once in effect:
// batches are applied and the checkpoint advanced in one SQLite
// transaction, fenced by a lease so that a single indexer applies at a time,
// and every key is brought to "source row now + latest vector", which makes
// applying twice or replaying any range harmless.
//
// An Indexer needs no Go model types: everything it knows comes from the
// registry, so the standalone binary and an in-process worker run the same
// code. It also owns rebuilds of the sidecars: online by default (the next
// generation is built beside the live one in short transactions and
// swapped in, resumably, see Rebuild), or in one transaction (WithOffline).
// See docs/ARCHITECTURE.md for the contract.
//
// Vectors tagged `vec:"…;from=Title,Body"` are derived from text: the
// Indexer embeds them with the embedder given to WithEmbedder, never inside
// a write transaction, re-embedding a key only when its text changed
// (embed.go).
//
//	ix, err := indexer.New(db, indexer.WithLogger(slog.Default()))
//	if err != nil { ... }
//	defer ix.Close()
//	go ix.Run(ctx)       // or: ix.Drain(ctx) / ix.Sync(ctx)
package indexer
