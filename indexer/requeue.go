package indexer

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// The requeue phase of an online rebuild (outbox.PhaseRequeue): after the
// swap of a table with derived vectors (tag from=), every row is queued for
// embedding, by key ranges in short transactions, as the offline rebuild
// does in its one transaction (rebuildEmbeddings). The embedding stage then
// keeps, at no cost, the vector of every key whose text still hashes to
// its state, and embeds the rest again: the text of a changed from= list,
// the keys of a changed embedding model, keys whose vector the new
// generation lacks. Until it has, queries read the vector each key had
// (the new generation holds what the live one held, key by key: see the
// exactness rules in online.go).
//
// It runs after the swap, not before: queued before it, a key would be
// embedded under the live spec, which the swap then replaces.

// requeueStep queues the next key range of r's table (t is the registry
// entry, which names the new generation since the swap) and moves r to
// its drop phase after the last range.
func (ix *Indexer) requeueStep(ctx context.Context, tx *sql.Tx, r *outbox.RebuildState, t *table) (bool, *outbox.RebuildState, error) {
	if ix.online.requeueRows <= 0 {
		ix.online.requeueRows = 256
	}
	budget := ix.workBudget()
	t0 := time.Now()
	hi, rows, last, err := nextRange(ctx, tx, t.spec, r.After, ix.online.requeueRows)
	if err != nil {
		return false, nil, err
	}
	cond, args := rangeCond(t.spec, r.After, hi, last)
	if err := forgetUnbacked(ctx, tx, t, cond, args); err != nil {
		return false, nil, err
	}
	if _, err := outbox.RequeueEmbeddingsWhere(ctx, tx, t.spec, cond, args...); err != nil {
		return false, nil, fmt.Errorf("rebuild %s: %w", r.Table, err)
	}
	ix.online.copyTime = time.Since(t0)
	ix.online.requeueRows = int(tune(int64(ix.online.requeueRows), ix.online.copyTime, budget, 64, 1<<20))
	r.Done += rows
	if last {
		r.Phase, r.After, r.Total = outbox.PhaseDrop, nil, r.Done
		// The drop's grace counts from here: later than the swap, so it is
		// only longer.
		r.SwappedAt = time.Now()
		ix.log.Info("rebuild: every row queued for embedding", "table", r.Table, "rows", r.Done)
	} else {
		r.After = hi
	}
	return true, r, outbox.SaveRebuild(ctx, tx, r)
}

// forgetUnbacked forgets, for the source rows of t that cond selects, the
// text hash of each derived vector whose sidecar (the live generation)
// holds no vector for the key: the queued key is then embedded whatever
// its text. The new generation holds what the live one held, so this only
// finds keys whose vector the log no longer had.
func forgetUnbacked(ctx context.Context, tx outbox.DB, t *table, cond string, args []any) error {
	key := "s." + outbox.Quote(t.spec.Key)
	for _, vs := range t.vecs {
		v := vs.VecSpec()
		if !v.Derived() {
			continue
		}
		// vec0 answers equality on its rowid or text id by a point lookup.
		match := "v.rowid = " + key
		switch {
		case t.spec.KeyType == outbox.KeyText:
			match = "v.id = " + key
		case v.Chunked(): // a row that has chunks has chunk 0
			match = fmt.Sprintf("v.rowid = %s * %d", key, outbox.MaxChunks)
		}
		// The unary + strips the source key's affinity, which would keep
		// the state table's primary key from being searched (the key
		// column has none): a scan of every state of the table per step.
		q := fmt.Sprintf(`DELETE FROM oi_embed_state WHERE tbl = ? AND field = ? AND key IN (
			SELECT +%s FROM %s s WHERE (%s) AND NOT EXISTS (SELECT 1 FROM %s v WHERE %s))`,
			key, outbox.Quote(t.spec.Source), cond, outbox.Quote(vs.Name()), match)
		if _, err := tx.ExecContext(ctx, q, append([]any{t.spec.Source, v.Table}, args...)...); err != nil {
			return fmt.Errorf("rebuild %s: embedding state of %s: %w", t.spec.Source, v.Table, err)
		}
	}
	return nil
}
