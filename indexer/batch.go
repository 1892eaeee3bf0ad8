package indexer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// unit is what a failure is attributed to: a whole table (key and event
// zero), one key of a table, or one event whose key cannot be decoded.
type unit struct {
	table string
	key   any
	event int64
}

func (u unit) String() string {
	switch {
	case u.event != 0:
		return fmt.Sprintf("event %d of table %s", u.event, u.table)
	case u.key != nil:
		return fmt.Sprintf("key %v of table %s", u.key, u.table)
	default:
		return "table " + u.table
	}
}

// attempt counts the failures of a unit.
type attempt struct {
	n   int
	err error
	b   backoff.BackOff
}

// unitError attributes a permanent failure to a unit.
type unitError struct {
	u   unit
	err error
}

func (e *unitError) Error() string { return e.u.String() + ": " + e.err.Error() }
func (e *unitError) Unwrap() error { return e.err }

// keyState gathers what a batch knows about one key.
type keyState struct {
	key    any
	ids    []int64          // in-batch event ids (applicable ones)
	events []outbox.Event   // decoded in-batch events
	err    error            // first decode failure among them
	later  map[string]int64 // replay only: per vector field (event field), a newer event outside the batch that sets its state
}

// tableBatch is the part of a batch that concerns one table.
type tableBatch struct {
	name  string
	keys  map[any]*keyState
	order []any
}

func (tb *tableBatch) keyState(k any) *keyState {
	ks, ok := tb.keys[k]
	if !ok {
		ks = &keyState{key: k}
		tb.keys[k] = ks
		tb.order = append(tb.order, k)
	}
	return ks
}

// allIDs returns the in-batch event ids of the given keys.
func allIDs(kss ...*keyState) []int64 {
	var ids []int64
	for _, ks := range kss {
		ids = append(ids, ks.ids...)
	}
	return ids
}

// batchResult describes a committed batch.
type batchResult struct {
	events     int
	keys       int
	parked     int
	checkpoint int64
	final      bool // the log had nothing after the batch: the checkpoint reached the head
	newest     int64
	units      []unit   // units applied, whose failure counts can be forgotten
	applied    []*table // tables whose live sidecars the batch wrote
	parkedAt   map[unit]bool
	parks      []parkGroup // what was parked, reported once the batch has committed
}

// parkGroup is a set of events to park with one reason.
type parkGroup struct {
	table    string
	ids      []int64
	reason   string
	attempts int
}

// step applies one batch: it retries a batch whose unit fails with a
// permanent error, after a pause from the backoff policy, until the unit
// has failed maxAttempts times; then the unit's events are parked and the
// rest of the batch goes on. Transient errors are returned to the caller,
// which retries.
func (ix *Indexer) step(ctx context.Context) (batchResult, error) {
	park := map[unit]string{}
	for u, a := range ix.attempts {
		if a.n >= ix.cfg.maxAttempts {
			park[u] = a.err.Error()
		}
	}
	for {
		var res batchResult
		start := ix.cfg.now()
		var locked time.Time
		limit := ix.batchLimit()
		err := ix.inTx(ctx, func(tx *sql.Tx) error {
			locked = ix.cfg.now() // BEGIN IMMEDIATE took the write lock
			if err := ix.fence(ctx, tx); err != nil {
				return err
			}
			var err error
			res, err = ix.applyTx(ctx, tx, &ix.registry, park, start, limit)
			if err != nil {
				return err
			}
			return ix.mergeSliceTx(ctx, tx, res.applied)
		})
		if err == nil {
			ix.sizeBatches(limit, res.events+res.parked, ix.cfg.now().Sub(locked))
			ix.extended(start)
			for _, u := range res.units {
				delete(ix.attempts, u)
			}
			for u := range res.parkedAt {
				delete(ix.attempts, u)
			}
			if res.events > 0 && ix.embed != nil {
				ix.kickEmbed()
				ix.embed.wake()
			}
			// Parks are reported after the commit: a rolled-back batch parked
			// nothing.
			for _, p := range res.parks {
				ix.log.Error("events parked as dead letters", "table", p.table, "events", len(p.ids), "attempts", p.attempts, "reason", p.reason)
				if f := ix.cfg.observer.Parked; f != nil {
					f(p.table, len(p.ids), p.reason)
				}
			}
			if f := ix.cfg.observer.Batch; f != nil && res.events+res.parked > 0 {
				st := BatchStats{Events: res.events, Keys: res.keys, Parked: res.parked, Checkpoint: res.checkpoint, Wait: locked.Sub(start), Duration: ix.cfg.now().Sub(locked)}
				if res.newest != 0 {
					st.Lag = ix.cfg.now().Sub(time.Unix(0, res.newest))
				}
				f(st)
			}
			return res, nil
		}
		if errors.Is(err, outbox.ErrLeaseLost) {
			ix.lostLease()
			return res, err
		}
		var ue *unitError
		if !errors.As(err, &ue) || transient(err) || ctx.Err() != nil {
			return res, err
		}
		ix.observeError(err)
		a := ix.attempts[ue.u]
		if a == nil {
			a = &attempt{b: ix.cfg.newBackoff()}
			a.b.Reset()
			ix.attempts[ue.u] = a
		}
		a.n++
		a.err = ue.err
		ix.log.Warn("apply failed", "unit", ue.u.String(), "attempt", a.n, "of", ix.cfg.maxAttempts, "err", ue.err)
		if a.n >= ix.cfg.maxAttempts {
			park[ue.u] = ue.err.Error()
			continue
		}
		d := a.b.NextBackOff()
		if d < 0 {
			a.n = ix.cfg.maxAttempts
			park[ue.u] = ue.err.Error()
			continue
		}
		if err := sleep(ctx, d); err != nil {
			return res, err
		}
	}
}

// applyTx applies one batch of at most limit events inside a write
// transaction that the caller opened (and fenced, if it applies under the
// lease): read a batch, read the
// source rows of its keys, apply every sink, park what must be parked,
// advance the checkpoint. reg is the registry cache to use; it is not safe
// for concurrent use. With an empty park map, applyTx does not touch
// ix.attempts.
func (ix *Indexer) applyTx(ctx context.Context, tx outbox.DB, reg *registry, park map[unit]string, now time.Time, limit int) (res batchResult, err error) {
	cp, err := outbox.Checkpoint(ctx, tx, outbox.MainCheckpoint)
	if err != nil {
		return res, err
	}
	raws, err := outbox.ReadRawEvents(ctx, tx, cp, limit)
	if err != nil {
		return res, err
	}
	res.checkpoint = cp
	res.final = len(raws) < limit
	var head int64
	if res.final {
		if head, err = outbox.Head(ctx, tx); err != nil {
			return res, err
		}
	}
	if len(raws) == 0 {
		if head > cp {
			res.checkpoint = head
			return res, outbox.SetCheckpoint(ctx, tx, outbox.MainCheckpoint, head)
		}
		return res, nil
	}
	last := raws[len(raws)-1].ID
	floors, err := outbox.Floors(ctx, tx)
	if err != nil {
		return res, err
	}
	tables, err := reg.load(ctx, tx)
	if err != nil {
		return res, err
	}
	mirrors, err := ix.loadMirrors(ctx, tx)
	if err != nil {
		return res, err
	}

	var parks []parkGroup
	res.parkedAt = map[unit]bool{}
	addPark := func(u unit, ids []int64, reason string, attempts int) {
		if len(ids) == 0 {
			return
		}
		if u.key == nil && u.event == 0 && !strings.HasPrefix(reason, outbox.TableFailure) {
			reason = outbox.TableFailure + reason
		}
		parks = append(parks, parkGroup{table: u.table, ids: ids, reason: reason, attempts: attempts})
		res.parkedAt[u] = true
	}
	attemptsOf := func(u unit) int {
		if a := ix.attempts[u]; a != nil {
			return a.n
		}
		return 0
	}

	// Group the batch by table and key.
	batch := map[string]*tableBatch{}
	var names []string
	for _, r := range raws {
		if f, ok := floors[r.Table]; ok && r.ID <= f {
			res.events++ // already reflected by a rebuild
			continue
		}
		e, derr := r.Decode()
		if derr == nil {
			if t := tables[r.Table]; t != nil && t.spec != nil {
				_, isInt := e.Key.(int64)
				if isInt != (t.spec.KeyType == outbox.KeyInteger) {
					derr = fmt.Errorf("%w: event %d: key %v is a %T, table %s has %s keys", outbox.ErrBadEvent, r.ID, e.Key, e.Key, r.Table, t.spec.KeyType)
					e.Key = nil
				}
			}
		}
		if derr != nil && e.Key == nil {
			u := unit{table: r.Table, event: r.ID}
			if reason, ok := park[u]; ok {
				addPark(u, []int64{r.ID}, reason, attemptsOf(u))
				continue
			}
			return res, &unitError{u: u, err: derr}
		}
		tb := batch[r.Table]
		if tb == nil {
			tb = &tableBatch{name: r.Table, keys: map[any]*keyState{}}
			batch[r.Table] = tb
			names = append(names, r.Table)
		}
		ks := tb.keyState(e.Key)
		ks.ids = append(ks.ids, r.ID)
		if derr != nil {
			if ks.err == nil {
				ks.err = derr
			}
			continue
		}
		ks.events = append(ks.events, e)
		res.newest = max(res.newest, r.At)
	}
	slices.Sort(names)

	var blockedTables map[string]string
	dead, err := outbox.CountDeadLetters(ctx, tx)
	if err != nil {
		return res, err
	}
	if dead > 0 {
		if blockedTables, err = tableBlocks(ctx, tx); err != nil {
			return res, err
		}
	}

	var floorHead int64
	for _, name := range names {
		tb := batch[name]
		t := tables[name]
		tu := unit{table: name}
		all := make([]*keyState, 0, len(tb.order))
		for _, k := range tb.order {
			all = append(all, tb.keys[k])
		}
		if reason, ok := park[tu]; ok {
			addPark(tu, allIDs(all...), reason, attemptsOf(tu))
			continue
		}
		if reason, ok := blockedTables[name]; ok {
			addPark(tu, allIDs(all...), fmt.Sprintf("%sblocked behind earlier dead letters of table %s (%s); retry the dead letters or rebuild the table", outbox.TableFailure, name, reason), 0)
			continue
		}
		var blockedKeys map[any]bool
		if dead > 0 {
			if blockedKeys, err = keyBlocks(ctx, tx, name, tb.order); err != nil {
				return res, err
			}
		}
		live := all[:0:0]
		for _, ks := range all {
			ku := unit{table: name, key: ks.key}
			switch reason, ok := park[ku]; {
			case ok:
				addPark(ku, allIDs(ks), reason, attemptsOf(ku))
			case blockedKeys[ks.key]:
				addPark(ku, allIDs(ks), fmt.Sprintf("blocked behind earlier dead letters of key %v of table %s; retry them or rebuild the table", ks.key, name), 0)
			case ks.err != nil:
				return res, &unitError{u: ku, err: ks.err}
			default:
				live = append(live, ks)
			}
		}
		if len(live) == 0 {
			continue
		}
		if t == nil {
			return res, &unitError{u: tu, err: fmt.Errorf("%w: %s", outbox.ErrNotRegistered, name)}
		}
		if t.err != nil {
			return res, &unitError{u: tu, err: t.err}
		}
		if err := missingEmbedder(t.spec, ix.embed); err != nil {
			return res, err
		}
		// A key applied while later events of it remain in the log gets a
		// floor (external-content FTS5): the head, read in this transaction.
		// A final batch read the log to its end: no later event exists.
		var floorAt int64
		if !res.final && t.external != nil {
			if floorHead == 0 {
				if floorHead, err = outbox.Head(ctx, tx); err != nil {
					return res, err
				}
			}
			floorAt = floorHead
		}
		if err := ix.applyTable(ctx, tx, t, live, outbox.ApplyOptions{}, "", floorAt, mirrors[name]); err != nil {
			return res, err
		}
		for _, ks := range live {
			res.events += len(ks.ids)
			res.units = append(res.units, unit{table: name, key: ks.key})
		}
		res.keys += len(live)
		res.units = append(res.units, tu)
		res.applied = append(res.applied, t)
	}
	ix.merges.mark(res.applied)
	for _, p := range parks {
		if err := outbox.ParkEvents(ctx, tx, p.ids, p.reason, p.attempts, now); err != nil {
			return res, err
		}
		res.parked += len(p.ids)
		res.parks = append(res.parks, p)
	}
	res.checkpoint = max(last, head)
	return res, outbox.SetCheckpoint(ctx, tx, outbox.MainCheckpoint, res.checkpoint)
}

// tableBlocks returns the tables that have table-level dead letters.
func tableBlocks(ctx context.Context, tx outbox.DB) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT tbl, min(id) FROM oi_deadletters WHERE substr(error, 1, ?) = ? GROUP BY tbl`, len(outbox.TableFailure), outbox.TableFailure)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var tbl string
		var id int64
		if err := rows.Scan(&tbl, &id); err != nil {
			return nil, fmt.Errorf("read dead letters: %w", err)
		}
		out[tbl] = fmt.Sprintf("first dead letter %d", id)
	}
	return out, rows.Err()
}

// keyBlocks returns the keys of table that have dead letters.
func keyBlocks(ctx context.Context, tx outbox.DB, table string, keys []any) (map[any]bool, error) {
	out := map[any]bool{}
	err := sqlutil.Chunked(keys, sqlutil.ChunkSize, func(chunk []any) error {
		// Embedding failures do not hold a key's events back (see
		// outbox.EmbedFailure).
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT key FROM oi_deadletters WHERE tbl = ? AND substr(error, 1, ?) <> ? AND key IN (`+outbox.Placeholders(len(chunk))+`)`,
			append([]any{table, len(outbox.EmbedFailure), outbox.EmbedFailure}, chunk...)...)
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k any
			if err := rows.Scan(&k); err != nil {
				return fmt.Errorf("read dead letters: %w", err)
			}
			if nk, err := outbox.NormalizeKey(k); err == nil {
				out[nk] = true
			}
		}
		return rows.Err()
	})
	return out, err
}

// srcRow is a source row as the sinks need it.
type srcRow struct {
	deleted bool
	values  []any // table.cols order
}

// readSource reads the current source rows of keys, one query per chunk.
func readSource(ctx context.Context, tx outbox.DB, t *table, keys []any) (map[any]srcRow, error) {
	spec := t.spec
	sel := []string{outbox.Quote(spec.Key)}
	if spec.SoftDelete != "" {
		sel = append(sel, fmt.Sprintf("(%s IS NOT NULL)", outbox.Quote(spec.SoftDelete)))
	} else {
		sel = append(sel, "0")
	}
	for _, c := range t.cols {
		sel = append(sel, outbox.Quote(c))
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s IN (", strings.Join(sel, ", "), outbox.Quote(spec.Source), outbox.Quote(spec.Key))
	out := make(map[any]srcRow, len(keys))
	err := sqlutil.Chunked(keys, sqlutil.ChunkSize, func(chunk []any) error {
		rows, err := tx.QueryContext(ctx, q+outbox.Placeholders(len(chunk))+")", chunk...)
		if err != nil {
			return fmt.Errorf("read source table %s: %w", spec.Source, err)
		}
		defer rows.Close()
		for rows.Next() {
			var k any
			var del bool
			vals := make([]any, len(t.cols))
			dest := make([]any, 0, 2+len(vals))
			dest = append(dest, &k, &del)
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := rows.Scan(dest...); err != nil {
				return fmt.Errorf("read source table %s: %w", spec.Source, err)
			}
			nk, err := outbox.NormalizeKey(k)
			if err != nil {
				return fmt.Errorf("read source table %s: %w", spec.Source, err)
			}
			out[nk] = srcRow{deleted: del, values: vals}
		}
		return rows.Err()
	})
	return out, err
}

// applyTable brings every sink of t to the state of keys. A failure is
// attributed to the key (a *outbox.KeyError from a sink) or to the table.
//
// The vector is the latest one the key's in-batch events set (or, in a
// replay, a newer event's: keyState.later); later events of the key are
// applied by later batches, and every sink but external-content FTS5 is
// state based (delete by key, write the source row now), so applying them
// again is harmless. External-content FTS5 skips a key's events at or below
// its floor (already reflected), takes the before-image of the first event
// above it, and, with floorAt > 0 (events after the batch exist), records
// floorAt, the log head, as the floor of every key it re-indexed.
//
// With m (an online rebuild of the table in progress), the keys the new
// generation already holds get the same changes in it, first (its FTS5
// sink keeps the key map, which the live one updates).
func (ix *Indexer) applyTable(ctx context.Context, tx outbox.DB, t *table, keys []*keyState, opts outbox.ApplyOptions, floorTbl string, floorAt int64, m *mirror) error {
	tu := unit{table: t.spec.Source}
	fail := func(err error) error {
		if transient(err) || readOnly(err) || ctx.Err() != nil {
			return err // the connection's failure, not the unit's
		}
		var ke *outbox.KeyError
		if errors.As(err, &ke) {
			return &unitError{u: unit{table: tu.table, key: ke.Key}, err: err}
		}
		return &unitError{u: tu, err: err}
	}
	ok, err := sqlutil.TableExists(ctx, tx, t.spec.Source)
	if err != nil {
		return err
	}
	if !ok {
		return fail(fmt.Errorf("%w: source table %s does not exist", outbox.ErrNoSidecar, t.spec.Source))
	}
	if m != nil && len(m.t.sinks) != len(t.sinks) {
		m = nil // not the same spec: the rebuild's next step starts it over
	}
	// A missing live sidecar fails the table, unless an online rebuild is
	// replacing it: then only the new generation is written.
	var missing map[int]bool
	for si, s := range t.sinks {
		ok, err := s.Exists(ctx, tx)
		if err != nil {
			return err
		}
		if !ok && m == nil {
			return fail(fmt.Errorf("%w: %s (of %s); rebuild the table", outbox.ErrNoSidecar, s.Name(), t.spec.Source))
		}
		if !ok {
			if missing == nil {
				missing = map[int]bool{}
			}
			missing[si] = true
		}
	}
	ids := make([]any, len(keys))
	for i, ks := range keys {
		ids[i] = ks.key
	}
	rows, err := readSource(ctx, tx, t, ids)
	if err != nil {
		return fail(err)
	}
	// first[i] is the index in keys[i].events of the first event above the
	// key's floor (external content only); len(events) when there is none.
	var first []int
	var floored []any
	// The embedding queue and the text hashes describe the live
	// generation: a new one being caught up (its own floors) leaves them.
	live := floorTbl == ""
	if live {
		floorTbl = t.spec.Source
	}
	if t.external != nil && !opts.Replay {
		floors, err := outbox.KeyFloors(ctx, tx, floorTbl, ids)
		if err != nil {
			return err
		}
		first = make([]int, len(keys))
		for i, ks := range keys {
			f := floors[ks.key]
			// The first event above the floor that changed the row: an
			// OpVector event changed no text and carries no before-image.
			j := 0
			for j < len(ks.events) && (ks.events[j].ID <= f || ks.events[j].Op == outbox.OpVector) {
				j++
			}
			first[i] = j
			if j < len(ks.events) && floorAt > 0 {
				floored = append(floored, ks.key)
			}
		}
	}
	base := make([]outbox.Change, len(keys))
	for i, ks := range keys {
		c := &base[i]
		c.Key = ks.key
		row, exists := rows[ks.key]
		c.Exists, c.Deleted = exists, row.deleted
		if len(ks.events) > 0 {
			c.Old = ks.events[0].Old
		}
	}
	// vecs[f][i]: the vector state of key i for vector field f (the
	// index in t.vecs): the latest one the key's events set, a hard delete
	// (and, for fields other than the first, an insert) meaning "no vector"
	// (the row that exists now, if any, is a new one).
	vecs := make([][][]byte, len(t.vecs))
	for f, vs := range t.vecs {
		vecs[f] = make([][]byte, len(keys))
		for i, ks := range keys {
			vecs[f][i] = vs.VectorState(ks.events)
			if id := ks.later[vs.Field()]; id != 0 {
				var v []byte
				var op int64
				if err := tx.QueryRowContext(ctx, `SELECT vec, op FROM oi_events WHERE id = ?`, id).Scan(&v, &op); err != nil {
					return fail(fmt.Errorf("read vector of event %d: %w", id, err))
				}
				if v == nil || outbox.Op(op) == outbox.OpDelete || (vs.Field() != "" && outbox.Op(op) == outbox.OpInsert) {
					v = []byte{}
				}
				vecs[f][i] = v
			}
		}
	}
	changes := make([]outbox.Change, len(keys))
	for si, s := range t.sinks {
		cols := s.Columns()
		var vec [][]byte
		if vs, ok := s.(*vecsink.Table); ok {
			vec = vecs[slices.Index(t.vecs, vs)]
		}
		for i, ks := range keys {
			changes[i] = base[i]
			if vec != nil {
				changes[i].Vec = vec[i]
			}
			if row, ok := rows[ks.key]; ok {
				vals := make([]any, len(cols))
				for j, c := range cols {
					vals[j] = row.values[t.col[c]]
				}
				changes[i].Values = vals
			}
		}
		apply := changes
		if first != nil && s == outbox.Sink(t.external) {
			apply = apply[:0:0]
			for i, ks := range keys {
				if j := first[i]; j < len(ks.events) {
					c := changes[i]
					c.Old = ks.events[j].Old
					apply = append(apply, c)
				}
			}
		}
		if len(apply) == 0 {
			continue
		}
		if m != nil {
			var mine []outbox.Change
			for _, c := range apply {
				if m.holds(c.Key) {
					mine = append(mine, c)
				}
			}
			if len(mine) > 0 {
				mo := opts
				mo.KeepKeyMap = true
				if err := m.t.sinks[si].Apply(ctx, tx, mine, mo); err != nil {
					return fail(err)
				}
			}
		}
		if missing[si] {
			continue
		}
		if err := s.Apply(ctx, tx, apply, opts); err != nil {
			return fail(err)
		}
	}
	if len(floored) > 0 {
		if err := outbox.SetKeyFloors(ctx, tx, floorTbl, floored, floorAt); err != nil {
			return err
		}
	}
	for f, vs := range t.vecs {
		if live && vs.VecSpec().Derived() {
			if err := queueDerived(ctx, tx, t, vs, keys, rows, vecs[f], ix.cfg.now()); err != nil {
				return fail(err)
			}
		}
	}
	return nil
}

// batchTime is how long, in rebuild steps (WithRebuildStep), a batch of
// the worker aims to hold the write lock at most: long enough that a Drain
// with nobody else writing keeps batches near WithBatchSize (about 140 µs
// an event at 1M rows: 570 events), short enough that a backlog does not
// freeze the application's writes.
const batchTime = 4

// batchLimit is how many events the worker's next batch reads: at most
// WithBatchSize, fewer when the batches' time per event says that many
// would hold the write lock longer than batchTime rebuild steps
// (sizeBatches). A backlog is then applied in batches that writers can get
// between: in a 1M-row run, batches of 1,000 events held the lock for 1-2
// s.
func (ix *Indexer) batchLimit() int {
	if ix.batchRows <= 0 {
		return ix.cfg.batchSize
	}
	return min(ix.batchRows, ix.cfg.batchSize)
}

// sizeBatches sizes the next batch after one of limit events that applied
// n in hold (from the lock to the end of its commit).
func (ix *Indexer) sizeBatches(limit, n int, hold time.Duration) {
	if n <= 0 {
		return
	}
	ix.batchRows = batchEvents(limit, hold/time.Duration(n), batchTime*ix.cfg.rebuildStep, ix.cfg.batchSize)
}
