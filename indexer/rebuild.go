package indexer

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// Rebuild re-creates the sidecars of the given source tables (all
// registered tables when none is given) from authoritative data: FTS5 text
// from the source rows, vectors from the retained log (the latest vector
// event of each live key, including parked ones), with the spec the
// registry holds now.
//
// By default the rebuild is online: the next generation of the sidecars is
// built beside the live one in short write transactions (each aims at
// WithRebuildStep), kept in step with the events applied meanwhile, and
// swapped in with one short transaction; then the previous generation is
// dropped. Queries see the old sidecars, complete, until the swap, and the
// new ones, complete, after it; writers are never blocked for longer than
// a step. Progress is stored in the database (oi_rebuild): if Rebuild
// returns early (its context is cancelled, the process dies), the rebuild
// continues where it stopped on the next Rebuild of the table, or in the
// background in any worker (Run) or Drain of the database. Rebuild drives
// it to completion in the foreground, applying the log meanwhile (it takes
// the lease if it is free, like Drain), and reports progress to
// WithProgress.
//
// Tables with derived vectors (tag from=) are rebuilt online too; after
// the swap, every row is queued for embedding, by key ranges (the requeue
// phase): the vector of a key whose text still hashes to what was embedded
// is kept at no cost, the others (a changed from= list or embedding model)
// are embedded again by the embedding stage, outside any transaction, and
// replace the key's vector as they come.
//
// With WithOffline, everything happens in ONE write transaction instead:
// sidecars are dropped, re-created and filled in large batches, and the
// events of those tables up to the log head are marked applied; readers
// (WAL) see the old sidecars or the new ones, but writers wait for the
// whole rebuild. It is faster, for maintenance windows, and discards any
// online rebuild of the tables in progress.
//
// Rebuild repairs whatever drifted: rows bulk-loaded with raw SQL, sidecars
// dropped by hand, a spec changed in the model tags, dead letters of the
// table (restored into the log as history, or dropped if they cannot be
// decoded), and it reclaims the space of deleted vectors (vec0 never frees
// it).
func (ix *Indexer) Rebuild(ctx context.Context, tables ...string) error {
	if err := ix.checkOpen(); err != nil {
		return err
	}
	if ix.cfg.offline {
		return ix.rebuildOffline(ctx, tables)
	}
	if err := ix.rebuildOnline(ctx, tables); err != nil {
		return fmt.Errorf("indexer: rebuild: %w", err)
	}
	ix.applyMu.Lock()
	clear(ix.attempts)
	ix.applyMu.Unlock()
	ix.Notify()
	return nil
}

// rebuildOffline rebuilds tables in one write transaction (WithOffline),
// then merges their FTS5 indexes in short ones (settleMerges).
func (ix *Indexer) rebuildOffline(ctx context.Context, tables []string) error {
	done, err := ix.rebuildOfflineTx(ctx, tables)
	if err != nil {
		return fmt.Errorf("indexer: rebuild: %w", err)
	}
	if err := ix.settleMerges(ctx, done); err != nil {
		return fmt.Errorf("indexer: rebuild: merge: %w", err)
	}
	ix.walCheckpoint(ctx) // what the merges wrote
	ix.Notify()
	return nil
}

func (ix *Indexer) rebuildOfflineTx(ctx context.Context, tables []string) ([]string, error) {
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	var done []string
	err := ix.retry(ctx, func(ctx context.Context) error {
		return ix.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			done, err = ix.rebuildTx(ctx, tx, tables)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	for u := range ix.attempts {
		if slices.Contains(done, u.table) {
			delete(ix.attempts, u)
		}
	}
	ix.walCheckpoint(ctx)
	return done, nil
}

// walCheckpoint copies what an offline rebuild wrote to the WAL (the whole
// sidecars) into the database file now, in the rebuild's call, rather than
// in the next commit past the auto-checkpoint threshold, often the
// application's.
func (ix *Indexer) walCheckpoint(ctx context.Context) {
	if _, err := ix.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		ix.log.Warn("rebuild: checkpoint", "err", err)
	}
}

// settleMerges merges the FTS5 indexes of tables in short write
// transactions (steps of WithRebuildStep) into one segment each, which it
// then lifts (liftOwnConn; see sideMergePages for why one segment). An
// index filled in one transaction, by FTS5's 'rebuild' or by batches of
// inserts, ends with levels full of segments, partly merged: left alone,
// the writes that come next merge them, one write at a time and once a
// whole level at once (FTS5's crisis merge). Measured after a 100k-row
// 'rebuild': single-row inserts took 26–50 ms every few dozen writes and
// one took 326 ms; after merges down to fewer than 4 segments a level
// (0.5 s), at most 31 ms.
func (ix *Indexer) settleMerges(ctx context.Context, tables []string) error {
	reg, err := ix.registry.load(ctx, ix.db)
	if err != nil {
		return err
	}
	for _, n := range tables {
		t := reg[n]
		if t == nil || t.err != nil || !slices.ContainsFunc(t.sinks, func(s outbox.Sink) bool {
			_, ok := s.(outbox.Merger)
			return ok
		}) {
			continue
		}
		for more := true; more; {
			err := ix.retry(ctx, func(ctx context.Context) error {
				ix.applyMu.Lock()
				defer ix.applyMu.Unlock()
				return ix.inTx(ctx, func(tx *sql.Tx) error {
					var err error
					more, err = ix.mergeOnly(ctx, tx, t, true)
					return err
				})
			})
			if err != nil {
				return err
			}
			if more {
				if err := ix.yield(ctx); err != nil {
					return err
				}
			}
		}
		if err := ix.liftOwnConn(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// liftOwnConn lifts the FTS5 indexes of t, just rebuilt (liftLevels), in
// a transaction on a connection of its own, which it then discards: FTS5
// caches an index's structure per connection and checks the cache against
// PRAGMA data_version, which a connection's own commits do not change, so
// the connection that lifts would go on from the structure it read
// before. Every other connection sees the lift. An in-memory database is
// not lifted: its last connection would take the database with it.
func (ix *Indexer) liftOwnConn(ctx context.Context, t *table) error {
	if !slices.ContainsFunc(t.sinks, func(s outbox.Sink) bool {
		_, ok := s.(levelLifter)
		return ok
	}) {
		return nil
	}
	conn, err := ix.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if f, err := outbox.MainFile(ctx, conn); err != nil || f == "" {
		return err
	}
	err = ix.retry(ctx, func(ctx context.Context) error {
		ix.applyMu.Lock()
		defer ix.applyMu.Unlock()
		return inTxOn(ctx, conn, func(tx *sql.Tx) error { return ix.liftLevels(ctx, tx, t) })
	})
	// Whatever happened, the connection goes (database/sql closes a
	// connection whose Raw returns driver.ErrBadConn).
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	return err
}

func (ix *Indexer) rebuildTx(ctx context.Context, tx *sql.Tx, names []string) ([]string, error) {
	reg, names, err := ix.rebuildTables(ctx, tx, names)
	if err != nil {
		return nil, err
	}
	head, err := outbox.Head(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := discardRebuilds(ctx, tx, names); err != nil {
		return nil, err
	}
	for _, n := range names {
		t := reg[n]
		var valid func(string, []byte) bool
		if len(t.vecs) > 0 {
			valid = func(field string, b []byte) bool {
				v := t.vecOf[field]
				return v != nil && v.ValidVector(b)
			}
		}
		restored, dropped, err := outbox.RestoreDeadLetters(ctx, tx, n, valid)
		if err != nil {
			return nil, err
		}
		if restored+dropped > 0 {
			ix.log.Info("rebuild: dead letters folded into the log", "table", n, "restored", restored, "dropped", dropped)
		}
		for _, s := range t.sinks {
			name := s.Name()
			var progress func(done, total int64)
			if f := ix.cfg.progress; f != nil {
				progress = func(done, total int64) {
					f(Progress{Table: n, Sidecar: name, Done: done, Total: total})
				}
			}
			rows, err := s.Rebuild(ctx, tx, outbox.RebuildOptions{BatchSize: ix.cfg.rebuildBatchSize, Progress: progress})
			if err != nil {
				return nil, err
			}
			ix.log.Info("rebuilt sidecar", "table", n, "sidecar", name, "entries", rows)
		}
		if err := rebuildEmbeddings(ctx, tx, t); err != nil {
			return nil, err
		}
		// Events of rows that no longer exist are of no use to any rebuild.
		q := fmt.Sprintf(`DELETE FROM oi_events WHERE tbl = ? AND id <= ? AND key NOT IN (SELECT %s FROM %s)`, outbox.Quote(t.spec.Key), outbox.Quote(t.spec.Source))
		if _, err := tx.ExecContext(ctx, q, n, head); err != nil {
			return nil, fmt.Errorf("rebuild %s: prune the log: %w", n, err)
		}
		if err := outbox.SetCheckpoint(ctx, tx, outbox.RebuiltPrefix+n, head); err != nil {
			return nil, err
		}
		// The rebuild floor covers every event up to the head: the table's
		// key floors are all below it.
		if err := outbox.DeleteKeyFloors(ctx, tx, n); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// Replay re-applies the retained events from position from (inclusive) up
// to the checkpoint at the time of the call, in batches, and leaves the
// checkpoint alone. It is idempotent: every key named by those events is
// brought again to its source row and the latest vector the log holds for
// it (later, pending events included). External-content FTS5 sidecars are
// skipped, because their deletes need before-images that describe what is
// indexed now (use Rebuild to re-derive them). Replay does not need the
// lease.
func (ix *Indexer) Replay(ctx context.Context, from int64) error {
	if err := ix.checkOpen(); err != nil {
		return err
	}
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	upper, err := ix.checkpoint(ctx)
	if err != nil {
		return err
	}
	pos := max(from-1, 0)
	latest := &latestVecs{seen: pos}
	for pos < upper {
		err := ix.retry(ctx, func(ctx context.Context) error {
			return ix.inTx(ctx, func(tx *sql.Tx) error {
				var err error
				pos, err = ix.replayTx(ctx, tx, pos, upper, latest)
				return err
			})
		})
		if err != nil {
			return fmt.Errorf("indexer: replay: %w", err)
		}
	}
	return nil
}

// latestVecs follows, across a replay's transactions, the newest event of
// each key that sets its vector state (a vector, "no vector" or a hard
// delete), from the replay's start to the log head: one pass over the log
// in all, then only the events appended since.
type latestVecs struct {
	seen int64                               // events up to here were read
	ids  map[string]map[any]map[string]int64 // table -> key -> field -> event id
	// resets: table -> key -> the newest insert or hard delete, which
	// ends the vector of every field but the first (see
	// vecsink.Table.VectorState).
	resets map[string]map[any]int64
}

// latest returns the newest event of key that sets the vector state of
// field, or 0.
func (l *latestVecs) latest(tbl string, key any, field string) int64 {
	id := l.ids[tbl][key][field]
	if field != "" {
		id = max(id, l.resets[tbl][key])
	}
	return id
}

// catchUp reads the events appended since the last call.
func (l *latestVecs) catchUp(ctx context.Context, tx outbox.DB) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, tbl, key, op, vec IS NOT NULL, coalesce(field, '') FROM oi_events WHERE id > ? AND (vec IS NOT NULL OR op IN (?, ?)) ORDER BY id`,
		l.seen, int64(outbox.OpDelete), int64(outbox.OpInsert))
	if err != nil {
		return fmt.Errorf("read vector events: %w", err)
	}
	defer rows.Close()
	if l.ids == nil {
		l.ids = map[string]map[any]map[string]int64{}
		l.resets = map[string]map[any]int64{}
	}
	for rows.Next() {
		var id, op int64
		var hasVec bool
		var tbl, field string
		var k any
		if err := rows.Scan(&id, &tbl, &k, &op, &hasVec, &field); err != nil {
			return fmt.Errorf("read vector events: %w", err)
		}
		l.seen = id
		nk, err := outbox.NormalizeKey(k)
		if err != nil {
			continue
		}
		if outbox.Op(op) == outbox.OpInsert || outbox.Op(op) == outbox.OpDelete {
			r := l.resets[tbl]
			if r == nil {
				r = map[any]int64{}
				l.resets[tbl] = r
			}
			r[nk] = id
		}
		if !hasVec && outbox.Op(op) != outbox.OpDelete {
			continue
		}
		m := l.ids[tbl]
		if m == nil {
			m = map[any]map[string]int64{}
			l.ids[tbl] = m
		}
		f := m[nk]
		if f == nil {
			f = map[string]int64{}
			m[nk] = f
		}
		f[field] = id
	}
	return rows.Err()
}

func (ix *Indexer) replayTx(ctx context.Context, tx *sql.Tx, after, upper int64, latest *latestVecs) (int64, error) {
	raws, err := outbox.ReadRawEvents(ctx, tx, after, ix.cfg.batchSize)
	if err != nil {
		return after, err
	}
	if len(raws) == 0 || raws[0].ID > upper {
		return upper, nil
	}
	tables, err := ix.registry.load(ctx, tx)
	if err != nil {
		return after, err
	}
	batch := map[string]*tableBatch{}
	var names []string
	last := after
	for _, r := range raws {
		if r.ID > upper {
			break
		}
		last = r.ID
		e, err := r.Decode()
		if err != nil {
			ix.log.Warn("replay: skipping an undecodable event", "id", r.ID, "err", err)
			continue
		}
		tb := batch[r.Table]
		if tb == nil {
			tb = &tableBatch{name: r.Table, keys: map[any]*keyState{}}
			batch[r.Table] = tb
			names = append(names, r.Table)
		}
		ks := tb.keyState(e.Key)
		ks.ids = append(ks.ids, r.ID)
		ks.events = append(ks.events, e)
	}
	slices.Sort(names)
	if err := latest.catchUp(ctx, tx); err != nil {
		return after, err
	}
	for _, n := range names {
		t := tables[n]
		if t == nil || t.err != nil {
			ix.log.Warn("replay: skipping events of a table with no usable registry entry", "table", n)
			continue
		}
		tb := batch[n]
		// The newest vector state up to the log head, pending events
		// included, so that the vector is the latest the log holds (pending
		// events a rebuild already reflected are never re-applied).
		keys := make([]*keyState, 0, len(tb.order))
		for _, k := range tb.order {
			ks := tb.keys[k]
			for _, v := range t.vecs {
				if id := latest.latest(n, k, v.Field()); id > ks.ids[len(ks.ids)-1] {
					if ks.later == nil {
						ks.later = map[string]int64{}
					}
					ks.later[v.Field()] = id
				}
			}
			keys = append(keys, ks)
		}
		if err := ix.applyTable(ctx, tx, t, keys, outbox.ApplyOptions{Replay: true}, "", 0, nil); err != nil {
			return after, err
		}
	}
	return last, nil
}

// rebuildTables loads the registry and returns it with the tables to
// rebuild: names, or every registered table (sorted) when none is given.
// A name the registry does not know, or whose spec cannot be read, is an
// error.
func (ix *Indexer) rebuildTables(ctx context.Context, tx *sql.Tx, names []string) (map[string]*table, []string, error) {
	reg, err := ix.registry.load(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	if len(names) == 0 {
		for n := range reg {
			names = append(names, n)
		}
		slices.Sort(names)
	}
	for _, n := range names {
		t := reg[n]
		if t == nil {
			return nil, nil, fmt.Errorf("%w: %s", outbox.ErrNotRegistered, n)
		}
		if t.err != nil {
			return nil, nil, t.err
		}
	}
	return reg, names, nil
}
