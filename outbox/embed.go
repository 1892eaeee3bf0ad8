package outbox

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"
)

// Derived vectors (from=).
//
// A vector whose VecSpec has From is computed by the indexer from the text
// of the source columns it names. The indexer keeps two tables for it:
//
//   - oi_embed_queue(id, tbl, field, key, queued_at): the keys whose text may
//     differ from the text their vector was computed from. The applier
//     queues a key (INSERT OR IGNORE: a queued key keeps its place) for
//     every change of the row it applies; the embedding stage takes keys
//     in id order and removes a key only in the transaction that checked
//     that the text it embedded is still the row's text.
//   - oi_embed_state(tbl, field, key, hash): the hash (EmbedHash) of the
//     text the key's current vector was computed from. A key whose text
//     hashes to its state costs no embedding call.
//
// field is the vec0 table of the vector (VecSpec.Table), for every vector
// field including the first. Keys have no declared type, as in oi_events.
//
// The vector itself travels like an application's: the embedding stage
// appends an OpVector event carrying it (Event.Field = Spec.EventField),
// and writes the state, in one transaction; the applier applies the event.
// So Rebuild, Replay and retention treat derived vectors exactly like
// supplied ones, and the state always describes the newest vector in the
// log: the applier deletes it whenever an event leaves the key with no
// vector (a hard delete or an insert).

// EmbedFailure prefixes the error text of dead letters parked because the
// embedding service can never embed the key's current text (it rejected
// that input, or answered a vector of the wrong dimension or with NaN).
// Unlike other dead letters they do not hold back the key's later events:
// a later change of the text queues the key again, and a successful
// embedding removes them. Retrying them queues the key again.
const EmbedFailure = "embedding failure: "

// EmbedHash returns the hash stored in oi_embed_state for text embedded by
// the embedder identified by model (any string that changes when the
// vectors would: provider, model name, dimension).
func EmbedHash(model, text string) []byte {
	h := sha256.New()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return h.Sum(nil)
}

// QueueEmbeds queues keys of the derived vector stored in vec0 table field
// of source table tbl for embedding. Keys already queued keep their place.
func QueueEmbeds(ctx context.Context, db DB, tbl, field string, keys []any, now time.Time) error {
	err := execValues(ctx, db, `INSERT OR IGNORE INTO oi_embed_queue (tbl, field, key, queued_at)`, "", 4, len(keys), func(i int) []any {
		return []any{tbl, field, keys[i], now.UnixNano()}
	})
	if err != nil {
		return fmt.Errorf("outbox: queue embeddings of %s.%s: %w", tbl, field, err)
	}
	return nil
}

// ClearEmbedStates forgets the embedded-text hashes of keys (their vector
// is gone), so that their next text is embedded whatever it is.
func ClearEmbedStates(ctx context.Context, db DB, tbl, field string, keys []any) error {
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		args := append([]any{tbl, field}, chunk...)
		if _, err := db.ExecContext(ctx, `DELETE FROM oi_embed_state WHERE tbl = ? AND field = ? AND key IN (`+Placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("outbox: clear embedding state of %s.%s: %w", tbl, field, err)
		}
	}
	return nil
}

// RequeueEmbeddings queues every row of spec's source table for each of
// its derived vectors, and returns how many keys it queued. Keys whose text
// still hashes to their state cost no embedding call, so this is what a
// rebuild of the table runs (in its transaction, after the sidecars are
// filled from the log): stored vectors of unchanged text are reused and
// only the rest is embedded. It also re-embeds everything after the
// embedding model changed, since the model is part of the hash.
func RequeueEmbeddings(ctx context.Context, db DB, spec *Spec) (int64, error) {
	return RequeueEmbeddingsWhere(ctx, db, spec, "1")
}

// RequeueEmbeddingsWhere is RequeueEmbeddings for the source rows (alias
// s) that cond, with args, selects: an online rebuild queues a table by
// key ranges.
func RequeueEmbeddingsWhere(ctx context.Context, db DB, spec *Spec, cond string, args ...any) (int64, error) {
	var n int64
	for _, v := range spec.DerivedVecs() {
		res, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO oi_embed_queue (tbl, field, key, queued_at) SELECT ?, ?, s.`+
			Quote(spec.Key)+`, ? FROM `+Quote(spec.Source)+` s WHERE `+cond+` ORDER BY s.`+Quote(spec.Key),
			append([]any{spec.Source, v.Table, time.Now().UnixNano()}, args...)...)
		if err != nil {
			return n, fmt.Errorf("outbox: queue embeddings of %s.%s: %w", spec.Source, v.Table, err)
		}
		m, _ := res.RowsAffected()
		n += m
	}
	return n, nil
}

// EmbedQueued returns the number of keys waiting for an embedding, per
// source table.
func EmbedQueued(ctx context.Context, db DB) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT tbl, count(*) FROM oi_embed_queue GROUP BY tbl`)
	if err != nil {
		return nil, fmt.Errorf("outbox: count embedding queue: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			return nil, fmt.Errorf("outbox: count embedding queue: %w", err)
		}
		out[t] = n
	}
	return out, rows.Err()
}

// QueuedEmbed is one entry of oi_embed_queue.
type QueuedEmbed struct {
	ID    int64
	Table string // source table
	Field string // vec0 table of the derived vector
	Key   any    // int64 or string
}

// ReadEmbedQueue returns up to limit queued keys in queue order, after
// entry id after (0: from the start).
func ReadEmbedQueue(ctx context.Context, db DB, after int64, limit int) ([]QueuedEmbed, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, tbl, field, key FROM oi_embed_queue WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: read embedding queue: %w", err)
	}
	defer rows.Close()
	var out []QueuedEmbed
	for rows.Next() {
		var q QueuedEmbed
		var k any
		if err := rows.Scan(&q.ID, &q.Table, &q.Field, &k); err != nil {
			return nil, fmt.Errorf("outbox: read embedding queue: %w", err)
		}
		if q.Key, err = NormalizeKey(k); err != nil {
			return nil, fmt.Errorf("outbox: read embedding queue: entry %d: %w", q.ID, err)
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// EmbedStates returns the stored text hashes of keys of a derived vector.
func EmbedStates(ctx context.Context, db DB, tbl, field string, keys []any) (map[any][]byte, error) {
	out := make(map[any][]byte, len(keys))
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		rows, err := db.QueryContext(ctx, `SELECT key, hash FROM oi_embed_state WHERE tbl = ? AND field = ? AND key IN (`+Placeholders(len(chunk))+`)`,
			append([]any{tbl, field}, chunk...)...)
		if err != nil {
			return nil, fmt.Errorf("outbox: read embedding state of %s.%s: %w", tbl, field, err)
		}
		for rows.Next() {
			var k any
			var h []byte
			if err := rows.Scan(&k, &h); err != nil {
				rows.Close()
				return nil, fmt.Errorf("outbox: read embedding state of %s.%s: %w", tbl, field, err)
			}
			nk, err := NormalizeKey(k)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("outbox: read embedding state of %s.%s: %w", tbl, field, err)
			}
			out[nk] = h
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("outbox: read embedding state of %s.%s: %w", tbl, field, err)
		}
	}
	return out, nil
}

// SetEmbedStates records, for keys of a derived vector, that the vector of
// keys[i] was computed from the text of hashes[i], in multi-row statements
// (a round settles hundreds of keys in one short transaction).
func SetEmbedStates(ctx context.Context, db DB, tbl, field string, keys []any, hashes [][]byte) error {
	if len(keys) != len(hashes) {
		return fmt.Errorf("outbox: record embedding states of %s.%s: %d keys, %d hashes", tbl, field, len(keys), len(hashes))
	}
	err := execValues(ctx, db, `INSERT INTO oi_embed_state (tbl, field, key, hash)`, ` ON CONFLICT (tbl, field, key) DO UPDATE SET hash = excluded.hash`, 4, len(keys), func(i int) []any {
		return []any{tbl, field, keys[i], hashes[i]}
	})
	if err != nil {
		return fmt.Errorf("outbox: record embedding states of %s.%s: %w", tbl, field, err)
	}
	return nil
}

// DequeueEmbeds removes queue entries by id.
func DequeueEmbeds(ctx context.Context, db DB, ids []int64) error {
	for start := 0; start < len(ids); start += keyChunk {
		chunk := ids[start:min(start+keyChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM oi_embed_queue WHERE id IN (`+Placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("outbox: dequeue embeddings: %w", err)
		}
	}
	return nil
}

// ParkEmbedFailure records a permanent embedding failure of key as a dead
// letter (an OpUpdate event without vector, whose error starts with
// EmbedFailure and names the field), so that an operator sees the
// provider's message and can retry it.
func ParkEmbedFailure(ctx context.Context, db DB, tbl, field string, key any, msg string, now time.Time) error {
	res, err := db.ExecContext(ctx, `INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES (?, ?, ?, NULL, NULL, ?)`, tbl, key, int(OpUpdate), now.UnixNano())
	if err != nil {
		return fmt.Errorf("outbox: park embedding failure of %s key %v: %w", tbl, key, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("outbox: park embedding failure of %s key %v: %w", tbl, key, err)
	}
	return ParkEvents(ctx, db, []int64{id}, EmbedFailure+"vector "+field+": "+msg, 1, now)
}

// ClearEmbedFailuresOf deletes the embedding-failure dead letters of keys
// of a derived vector (their current text was embedded).
func ClearEmbedFailuresOf(ctx context.Context, db DB, tbl, field string, keys []any) error {
	prefix := EmbedFailure + "vector " + field + ": "
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		args := append([]any{tbl, len(prefix), prefix}, chunk...)
		if _, err := db.ExecContext(ctx, `DELETE FROM oi_deadletters WHERE tbl = ? AND substr(error, 1, ?) = ? AND key IN (`+Placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("outbox: clear embedding failures of %s.%s: %w", tbl, field, err)
		}
	}
	return nil
}
