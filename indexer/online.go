package indexer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Online rebuild: the next generation of a table's sidecars is built
// beside the live one in short transactions and swapped in with one short
// transaction (see outbox.RebuildState for the phases, and
// docs/ARCHITECTURE.md for why it is exact). Progress lives in oi_rebuild,
// so any indexer continues a rebuild another one started: the worker (Run)
// and Drain drive pending rebuilds whenever they have caught up with the
// log, and Rebuild drives them to completion in the foreground.
//
// Exactness rests on three rules:
//
//   - a key range is copied only in a transaction that has first applied
//     every pending event (to the live sidecars, and to the new ones for
//     keys already copied), so the copy reads the source and the log
//     exactly at the log head h of that transaction, and every later event
//     has an id above h;
//   - from then on every apply writes a copied key to the new generation
//     too (the mirror), with the same changes as the live one;
//   - the swap transaction has applied everything too, and only renames
//     the live generation in the registry.

// errBehind reports that a rebuild step found more pending events than it
// may apply inside its own transaction (or one it cannot apply): the
// applier must run first.
var errBehind = errors.New("indexer: the log is ahead of the rebuild")

// onlineState is the in-process tuning of online rebuild steps, guarded by
// applyMu.
type onlineState struct {
	chunk int   // source rows per copy step
	scan  int64 // log ids per scan step
	pages int   // FTS5 merge pages per step
	// overhead is the part of the last step's lock hold that was neither
	// copying nor merging (catching up, bookkeeping, commit): what is left
	// of the step's budget goes to the copy and the merge.
	overhead, copyTime, mergeTime, catchUpTime time.Duration
	// foreground counts the Rebuild calls in progress in this process:
	// while there is one, this indexer drives rebuilds even when another
	// one drove the last step.
	foreground int
	// watch is what a foreground Rebuild reads PRAGMA data_version on
	// (nil otherwise) to notice other connections' commits between steps;
	// see adapt.
	watch *versionWatch
	// version is watch's data_version after the last step, haveVersion
	// whether it was read; quietSince is when the last sign of another
	// writer was seen; step is the lock budget of the next step.
	version     int64
	haveVersion bool
	quietSince  time.Time
	step        time.Duration

	// The side-file path (side.go): the main file's path (read once), the
	// open side file, the tuned rows per side step and per move copy, and
	// the keys the catch-up leaves to their dead letters.
	mainFile     string
	mainFileRead bool
	side         *sideFile
	sideChunk    int
	sideScan     int64
	moveRows     int
	catchRows    int
	catchPer     time.Duration // time per event applied by the catch-up (batchEvents)
	requeueRows  int           // rows per requeue step (requeue.go)
	skip         map[int64]bool
	// committed is when the last move step's transaction committed and
	// checkpoint how long the checkpoint after it took (withSideAttached):
	// the step's debug line tells the lock hold from what follows it.
	committed  time.Time
	checkpoint time.Duration
	// shrunk is the old table the last drop step emptied rows of (its
	// time is copyTime).
	shrunk string
	// prefetchRows and prefetchBytes bound what of the old generation a
	// drop step reads before it takes the write lock (twice what the last
	// step deleted), and dropBound is what that read covered: the step
	// deletes no other row (see prefetchDrop).
	prefetchRows  int
	prefetchBytes int64
	dropBound     outbox.ShrinkBound
	// moveWork is the copying budget of a move step (tuneWork; 0 before
	// the first), and moved whether the step that just ran was one.
	moveWork time.Duration
	moved    bool
	// dropAheadFor is the start of the rebuild whose drop reads ahead of
	// its deletes (prefetchDrop), since one of its steps read the disk.
	dropAheadFor time.Time
}

// quietAfter is how long a foreground online rebuild must see no other
// writer before its steps grow to quietStepFactor times the configured
// step (at most maxQuietStep): nobody waits for the lock then, and longer
// steps spend less of the time on each step's bookkeeping and commit. The
// first sign of another writer (a commit by another connection between two
// steps, or a step that had to wait for the lock) brings the configured
// step back at once. A writer that starts during a long step waits for it,
// once.
const (
	quietAfter      = time.Second
	quietStepFactor = 4
	maxQuietStep    = 100 * time.Millisecond
)

// stepBudget is how long the next rebuild step aims to hold the write lock.
func (ix *Indexer) stepBudget() time.Duration {
	if ix.online.step > 0 {
		return ix.online.step
	}
	return ix.cfg.rebuildStep
}

// workBudget is the part of the next step's budget left for its work
// (copying, merging, moving rows) once what the last step spent besides
// is taken off: at least a quarter of it.
func (ix *Indexer) workBudget() time.Duration {
	return max(ix.stepBudget()-ix.online.overhead, ix.stepBudget()/4)
}

// dataVersion reads PRAGMA data_version on the foreground rebuild's watch
// connection.
func (ix *Indexer) dataVersion(ctx context.Context) (int64, bool) {
	if ix.online.watch == nil {
		return 0, false
	}
	v, ok, err := ix.online.watch.read(ctx)
	return v, ok && err == nil
}

// othersCommitted reports whether another connection committed since the
// last step (its commits change data_version on watch; the pauses between
// steps are when other writers get the lock): a writer is about.
func (ix *Indexer) othersCommitted(ctx context.Context) bool {
	v, ok := ix.dataVersion(ctx)
	return ok && ix.online.haveVersion && v != ix.online.version
}

// adapt sets the next step's budget after a step: the configured step while
// another writer shows (contended, or another connection committed since
// the previous step), a longer one once none has for quietAfter. Only a
// foreground Rebuild, which has a watch connection, grows its steps.
func (ix *Indexer) adapt(ctx context.Context, contended bool) {
	now := time.Now()
	if v, ok := ix.dataVersion(ctx); ok {
		ix.online.version, ix.online.haveVersion = v, true
	} else {
		contended = true
	}
	if contended || ix.online.quietSince.IsZero() {
		ix.online.quietSince = now
	}
	next := ix.cfg.rebuildStep
	if ix.online.watch != nil && now.Sub(ix.online.quietSince) >= quietAfter {
		next = max(min(quietStepFactor*ix.cfg.rebuildStep, maxQuietStep), ix.cfg.rebuildStep)
	}
	ix.setStep(next)
}

// setStep sets the steps' budget. Back to a shorter one, it scales what was
// tuned for the longer one at once instead of letting tune walk it down
// step by step.
func (ix *Indexer) setStep(next time.Duration) {
	if prev := ix.stepBudget(); next < prev {
		f := float64(next) / float64(prev)
		ix.online.chunk = max(int(float64(ix.online.chunk)*f), 1)
		ix.online.pages = max(int(float64(ix.online.pages)*f), 1)
		ix.online.scan = max(int64(float64(ix.online.scan)*f), 1)
	}
	ix.online.step = next
}

// driverIdle is how long a rebuild's last driver may stay silent before a
// background driver (Run, Drain) of another indexer takes the rebuild over:
// a foreground Rebuild, or another worker, drives it meanwhile, and two
// drivers would only take turns holding the write lock. It is long enough
// for a driver's slowest read without the lock: in a 1M-row run on a slow
// disk (3 ms a random read), reading one old vector chunk ahead of its
// delete took up to 5 s, and with 2 s the application's worker took the
// drop phase over, stopped applying its events while it read, and then
// applied a backlog of 1,000 in one batch that held the lock for 1-2 s.
const driverIdle = 15 * time.Second

// prefetchTime bounds a read ahead of a drop step (prefetchDrop): it stops
// after the row that ends past it.
const prefetchTime = 500 * time.Millisecond

// dueFor reports whether r may be stepped by holder: always in the
// foreground, in the background when holder drove the last step, nobody
// did, or its driver has been silent for driverIdle.
func dueFor(r *outbox.RebuildState, holder string, foreground bool) bool {
	return foreground || r.Driver == "" || r.Driver == holder || time.Since(r.UpdatedAt) >= driverIdle
}

// mirror is the part of an online rebuild the applier needs: the sinks of
// the generation being built and which keys they already hold.
type mirror struct {
	t     *table
	after any  // keys up to after (in key order) are copied
	all   bool // every key is copied (merge phase)
}

// holds reports whether key k was copied into the new generation.
func (m *mirror) holds(k any) bool {
	if m.all {
		return true
	}
	switch a := m.after.(type) {
	case int64:
		kk, ok := k.(int64)
		return ok && kk <= a
	case string:
		kk, ok := k.(string)
		return ok && kk <= a
	}
	return false
}

// mirrorCache maps the spec JSON of a rebuild to its parsed table; the
// tables are immutable and shared by the worker and SyncTx.
type mirrorCache struct {
	sync.Mutex
	m map[string]*table
}

func (c *mirrorCache) get(src, raw string) *table {
	c.Lock()
	defer c.Unlock()
	if t, ok := c.m[src+"\x00"+raw]; ok {
		return t
	}
	if c.m == nil || len(c.m) > 64 {
		c.m = map[string]*table{}
	}
	t := newTable(src, raw)
	c.m[src+"\x00"+raw] = t
	return t
}

// loadMirrors returns the rebuilds whose new generation must follow the
// applied events, by source table. A rebuild whose tables are missing is
// left out (its next step starts it over).
func (ix *Indexer) loadMirrors(ctx context.Context, tx outbox.DB) (map[string]*mirror, error) {
	rows, err := tx.QueryContext(ctx, `SELECT tbl, spec, phase, after FROM oi_rebuild WHERE phase IN (?, ?)`, outbox.PhaseCopy, outbox.PhaseMerge)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, fmt.Errorf("read rebuilds: %w", err)
	}
	var out map[string]*mirror
	for rows.Next() {
		var src, raw, phase string
		var after any
		if err := rows.Scan(&src, &raw, &phase, &after); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read rebuilds: %w", err)
		}
		if b, ok := after.([]byte); ok {
			after = string(b)
		}
		t := ix.mirrors.get(src, raw)
		if t.err != nil {
			continue
		}
		if out == nil {
			out = map[string]*mirror{}
		}
		out[src] = &mirror{t: t, after: after, all: phase == outbox.PhaseMerge}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("read rebuilds: %w", err)
	}
	for src, m := range out {
		for _, s := range m.t.sinks {
			ok, err := s.Exists(ctx, tx)
			if err != nil {
				return nil, err
			}
			if !ok {
				delete(out, src)
				break
			}
		}
	}
	return out, nil
}

// rebuildOnline starts (or continues) online rebuilds of names and drives
// them to completion.
func (ix *Indexer) rebuildOnline(ctx context.Context, names []string) error {
	defer ix.releaseOneShot(ctx)
	defer ix.ckpt.wait()
	var started []string
	// A connection of its own to notice other writers by (see adapt);
	// without it (a small pool) the rebuild keeps the configured step.
	var watch *versionWatch
	if watchable(ix.db) {
		watch = &versionWatch{db: ix.db}
	}
	ix.applyMu.Lock()
	ix.online.foreground++
	if ix.online.watch == nil && watch != nil {
		ix.online.watch = watch
		ix.online.haveVersion, ix.online.quietSince, ix.online.step = false, time.Time{}, 0
	}
	ix.applyMu.Unlock()
	defer func() {
		ix.applyMu.Lock()
		ix.online.foreground--
		if watch != nil && ix.online.watch == watch {
			// Background drivers use the configured step.
			ix.online.watch = nil
			ix.setStep(ix.cfg.rebuildStep)
		}
		ix.applyMu.Unlock()
		if watch != nil {
			watch.close()
		}
	}()
	// A previous rebuild of these tables that only has its old generation
	// left to drop finishes first, in its bounded steps.
	if err := ix.finishDrops(ctx, names); err != nil {
		return err
	}
	ix.applyMu.Lock()
	err := ix.retry(ctx, func(ctx context.Context) error {
		return ix.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			started, err = ix.startRebuilds(ctx, tx, names)
			return err
		})
	})
	ix.applyMu.Unlock()
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left, err := ix.rebuildsLeft(ctx, started)
		if err != nil {
			return err
		}
		if !left {
			return nil
		}
		// Apply what is pending when this indexer can take the lease (like
		// Drain; a worker elsewhere may hold it), then a run of steps (each
		// applies the few events that arrive meanwhile itself) before the
		// next look at the log.
		err = nil
		if behind, berr := ix.behind(ctx); berr != nil {
			return berr
		} else if behind {
			_, _, err = ix.applyPending(ctx, 0, false, false)
		}
		switch {
		case err == nil, errors.Is(err, errNotHolder):
			for range 50 {
				ix.applyMu.Lock()
				did, err := ix.rebuildStep(ctx, true)
				ix.applyMu.Unlock()
				if err != nil {
					return err
				}
				if !did {
					if err := sleep(ctx, min(ix.cfg.pollInterval/4, 25*time.Millisecond)); err != nil {
						return err
					}
					break
				}
			}
		case errors.Is(err, outbox.ErrLeaseLost):
		case err != nil:
			return err
		}
	}
}

// finishDrops drives the rebuilds of names (all when empty) that have
// swapped already (their requeue and drop phases) to their end.
func (ix *Indexer) finishDrops(ctx context.Context, names []string) error {
	for {
		rs, err := outbox.Rebuilds(ctx, ix.db)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(rs, func(r *outbox.RebuildState) bool {
			return r.Swapped() && (len(names) == 0 || slices.Contains(names, r.Table))
		}) {
			return nil
		}
		ix.applyMu.Lock()
		did, err := ix.rebuildStep(ctx, true)
		ix.applyMu.Unlock()
		if err != nil {
			return err
		}
		if !did {
			if err := sleep(ctx, min(ix.cfg.pollInterval/4, 25*time.Millisecond)); err != nil {
				return err
			}
		}
	}
}

// behind reports whether events are pending, with two reads.
func (ix *Indexer) behind(ctx context.Context) (bool, error) {
	cp, err := ix.checkpoint(ctx)
	if err != nil {
		return false, err
	}
	head, err := ix.head(ctx)
	return cp < head, err
}

// rebuildsLeft reports whether any of the tables still has a rebuild in
// progress.
func (ix *Indexer) rebuildsLeft(ctx context.Context, tables []string) (bool, error) {
	var left bool
	err := ix.retry(ctx, func(ctx context.Context) error {
		rs, err := outbox.Rebuilds(ctx, ix.db)
		if err != nil {
			return err
		}
		left = slices.ContainsFunc(rs, func(r *outbox.RebuildState) bool { return slices.Contains(tables, r.Table) })
		return nil
	})
	return left, err
}

// startRebuilds starts an online rebuild of each of names (every
// registered table when empty) that has none in progress for its current
// spec, and returns the tables.
func (ix *Indexer) startRebuilds(ctx context.Context, tx *sql.Tx, names []string) ([]string, error) {
	reg, names, err := ix.rebuildTables(ctx, tx, names)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		t := reg[n]
		r, ok, err := outbox.LoadRebuild(ctx, tx, n)
		if err != nil {
			ix.log.Warn("rebuild: discarding an unreadable rebuild row", "table", n, "err", err)
			ok = false
		}
		if ok && r.Swapped() {
			// The previous rebuild swapped already: finish it now (its
			// requeue, if it had one left, is this rebuild's to do after
			// its own swap).
			if err := outbox.DropTables(ctx, tx, r.BuildingTables()...); err != nil {
				return nil, err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM oi_rebuild WHERE tbl = ?`, n); err != nil {
				return nil, fmt.Errorf("rebuild %s: %w", n, err)
			}
			ok = false
			if t, err = ix.reloadTable(ctx, tx, n); err != nil {
				return nil, err
			}
		}
		if ok && sameSpec(outbox.NextGeneration(t.spec), r.Spec) {
			ix.log.Info("rebuild: continuing", "table", n, "phase", r.Phase, "done", r.Done, "total", r.Total)
			continue
		}
		if err := ix.startRebuild(ctx, tx, t); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// reloadTable reads the registry again and returns the entry of n.
func (ix *Indexer) reloadTable(ctx context.Context, tx outbox.DB, n string) (*table, error) {
	reg, err := ix.registry.load(ctx, tx)
	if err != nil {
		return nil, err
	}
	t := reg[n]
	if t == nil {
		return nil, fmt.Errorf("%w: %s", outbox.ErrNotRegistered, n)
	}
	if t.err != nil {
		return nil, t.err
	}
	return t, nil
}

// sameSpec reports whether two specs are the same JSON (generations
// included).
func sameSpec(a, b *outbox.Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// startRebuild discards any rebuild of t in progress and starts a new one:
// dead letters of the table go back into the log (as history, like the
// offline Rebuild), the new generation's tables are created empty (FTS5
// without automatic merges), and the progress row is written.
func (ix *Indexer) startRebuild(ctx context.Context, tx *sql.Tx, t *table) error {
	n := t.spec.Source
	if err := outbox.DiscardRebuild(ctx, tx, n); err != nil {
		return err
	}
	var valid func(string, []byte) bool
	if len(t.vecs) > 0 {
		valid = func(field string, b []byte) bool {
			v := t.vecOf[field]
			return v != nil && v.ValidVector(b)
		}
	}
	restored, dropped, err := outbox.RestoreDeadLetters(ctx, tx, n, valid)
	if err != nil {
		return err
	}
	if restored+dropped > 0 {
		ix.log.Info("rebuild: dead letters folded into the log", "table", n, "restored", restored, "dropped", dropped)
	}
	target := outbox.NextGeneration(t.spec)
	raw, err := json.Marshal(target)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", n, err)
	}
	mt := ix.mirrors.get(n, string(raw))
	if mt.err != nil {
		return mt.err
	}
	for _, s := range mt.sinks {
		if _, ok := s.(outbox.Copier); !ok {
			return fmt.Errorf("rebuild %s: sidecar %s cannot be rebuilt online", n, s.Name())
		}
	}
	mainFile, err := ix.mainFile(ctx)
	if err != nil {
		return err
	}
	if sideEligible(mainFile, t.spec) {
		// Built in a side file (side.go): nothing is created in the main
		// file before the move; compaction keeps the log above the head.
		// The first side step counts the rows (off the write lock: a
		// count of a million rows takes most of a second).
		head, err := outbox.Head(ctx, tx)
		if err != nil {
			return err
		}
		r := &outbox.RebuildState{Table: n, Spec: target, Phase: outbox.PhaseSide, Scanned: head, Driver: ix.cfg.holder}
		if err := outbox.SaveRebuild(ctx, tx, r); err != nil {
			return err
		}
		ix.online.skip = nil
		ix.log.Info("rebuild: started online, in a side file", "table", n, "sidecars", sinkNames(mt), "side", outbox.SideFile(mainFile, n, r.StartedAt))
		return nil
	}
	for _, s := range mt.sinks {
		if err := outbox.DropTables(ctx, tx, s.Name()); err != nil {
			return err
		}
		c, ok := s.(outbox.Copier)
		if !ok {
			return fmt.Errorf("rebuild %s: sidecar %s cannot be rebuilt online", n, s.Name())
		}
		if err := c.Create(ctx, tx); err != nil {
			return err
		}
		if m, ok := s.(outbox.Merger); ok {
			if err := m.Bulk(ctx, tx, true); err != nil {
				return err
			}
		}
	}
	var total int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+outbox.Quote(n)).Scan(&total); err != nil {
		return fmt.Errorf("rebuild %s: count rows: %w", n, err)
	}
	phase := outbox.PhaseCopy
	if len(mt.vecs) > 0 {
		phase = outbox.PhaseScan
		states := outbox.Quote(outbox.VecStatesTable(n))
		for _, q := range []string{
			"DROP TABLE IF EXISTS " + states,
			"CREATE TABLE " + states + " (field TEXT NOT NULL, key NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (field, key)) WITHOUT ROWID",
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("rebuild %s: vector states: %w", n, err)
			}
		}
	}
	r := &outbox.RebuildState{Table: n, Spec: target, Phase: phase, Total: total, Driver: ix.cfg.holder}
	if err := outbox.SaveRebuild(ctx, tx, r); err != nil {
		return err
	}
	ix.log.Info("rebuild: started online", "table", n, "rows", total, "sidecars", sinkNames(mt))
	return nil
}

func sinkNames(t *table) string {
	names := make([]string, len(t.sinks))
	for i, s := range t.sinks {
		names[i] = s.Name()
	}
	return strings.Join(names, ",")
}

// rebuildStep runs one short transaction of the oldest online rebuild in
// progress that this indexer may drive (see dueFor), if any, then pauses
// so that writers get the lock, and reports whether it had work. The
// caller holds applyMu; a drop step releases it while it reads ahead
// (prefetchDrop).
func (ix *Indexer) rebuildStep(ctx context.Context, foreground bool) (bool, error) {
	idle := driverIdle
	if foreground {
		idle = 0
	}
	pending, err := outbox.RebuildDue(ctx, ix.db, ix.cfg.holder, idle)
	if err != nil || !pending {
		return false, err
	}
	// A rebuild in its side phase steps in its side file; one in its move
	// phase in a transaction that has the side file attached.
	next, err := ix.dueRebuild(ctx, ix.db, foreground, "")
	if err != nil {
		return false, err
	}
	run, only := ix.inTx, ""
	if next != nil {
		switch next.Phase {
		case outbox.PhaseDrop:
			if err := ix.prefetchDrop(ctx, next); err != nil {
				return false, err
			}
		case outbox.PhaseSide:
			if did, err := ix.sideDue(ctx, next); did || err != nil {
				return did, err
			}
		case outbox.PhaseMove:
			run = func(ctx context.Context, fn func(tx *sql.Tx) error) error { return ix.withSideAttached(ctx, next, fn) }
			only = next.Table
		}
	}
	var did bool
	var r *outbox.RebuildState
	var locked, stepEnd time.Time
	other := ix.othersCommitted(ctx)
	stepStart := time.Now()
	ix.online.copyTime, ix.online.mergeTime, ix.online.catchUpTime = 0, 0, 0
	ix.online.committed, ix.online.checkpoint, ix.online.shrunk = time.Time{}, 0, ""
	ix.online.moved = false
	err = ix.retry(ctx, func(ctx context.Context) error {
		return run(ctx, func(tx *sql.Tx) error {
			locked = time.Now() // BEGIN IMMEDIATE took the write lock
			var err error
			did, r, err = ix.rebuildStepTx(ctx, tx, foreground, only)
			stepEnd = time.Now()
			return err
		})
	})
	if errors.Is(err, errRetryStep) {
		return true, nil
	}
	hold := time.Since(locked)
	commit := time.Since(stepEnd)
	if err == nil && did {
		ix.adapt(ctx, other || locked.Sub(stepStart) > time.Millisecond)
	}
	if errors.Is(err, errBehind) {
		// The log is ahead: apply one batch in a transaction of its own
		// (sound without the lease, like SyncTx: the write lock serializes
		// it with the lease holder, which may be a dead process whose
		// lease has not expired yet).
		var applied bool
		err := ix.retry(ctx, func(ctx context.Context) error {
			return ix.inTx(ctx, func(tx *sql.Tx) error {
				res, err := ix.applyTx(ctx, tx, &ix.registry, map[unit]string{}, ix.cfg.now(), ix.cfg.batchSize)
				applied = res.events > 0
				return err
			})
		})
		var ue *unitError
		if errors.As(err, &ue) {
			// A failing event: the lease holder retries and parks it.
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("indexer: rebuild: catch up: %w", err)
		}
		return applied, nil
	}
	if err != nil {
		return false, fmt.Errorf("indexer: rebuild: %w", err)
	}
	if !did {
		return false, nil
	}
	d := hold
	if ix.online.copyTime+ix.online.mergeTime > 0 {
		ix.online.overhead = max(hold-ix.online.copyTime-ix.online.mergeTime, 0)
	}
	if r != nil {
		locks, ckpt := hold, time.Duration(0) // the lock hold and the checkpoint after it
		if c := ix.online.committed; !c.IsZero() {
			locks, commit, ckpt = c.Sub(locked), c.Sub(stepEnd), ix.online.checkpoint
		}
		if ix.online.moved {
			ix.online.moveWork = tuneWork(ix.online.moveWork, locks, ix.stepBudget())
		}
		ix.log.Debug("rebuild step", "table", r.Table, "phase", r.Phase, "done", r.Done, "chunk", ix.online.chunk, "pages", ix.online.pages, "scan", ix.online.scan,
			"wait", locked.Sub(stepStart), "hold", hold, "locked", locks, "commit", commit, "checkpoint", ckpt, "copy", ix.online.copyTime, "merge", ix.online.mergeTime, "catchup", ix.online.catchUpTime, "overhead", ix.online.overhead, "shrunk", ix.online.shrunk, "movework", ix.online.moveWork, "moverows", ix.online.moveRows)
		ix.reportStep(r, d)
	}
	if r != nil && r.Swapped() {
		// Swapped: the side file, if any, has served.
		ix.closeSide()
		if mainFile, err := ix.mainFile(ctx); err == nil {
			if err := outbox.RemoveSideFiles(mainFile, r.Table, ""); err != nil {
				ix.log.Warn("rebuild: side file", "table", r.Table, "err", err)
			}
		}
	}
	// Copy the WAL frames the step wrote into the database file, beside
	// the next step (see checkpointer), so that the application's next
	// commit does not do it.
	ix.ckpt.kick(ix.db, ix.log)
	return true, sleep(ctx, ix.stepPause())
}

// stepPause is the pause after an online rebuild step: longer than yield's,
// because a rebuild's steps follow each other for minutes. A writer that
// found the lock held polls again after a random sleep of up to 2 ms
// (ncruces/go-sqlite3's busy handler), and so does the application's
// worker: a gap of one polling interval let a waiting write lose the lock
// to the next step two or three times in a row (at 1M rows, writes waited
// 50-110 ms in BEGIN during the drop phase, whose steps held the lock 12-15
// ms each). Two polling intervals at least, a quarter of the step above
// 16 ms.
func (ix *Indexer) stepPause() time.Duration {
	return max(ix.cfg.rebuildStep/4, 4*time.Millisecond)
}

// dueRebuild returns the oldest online rebuild this indexer may step (see
// dueFor), of table only when only is set, nil if there is none.
func (ix *Indexer) dueRebuild(ctx context.Context, db outbox.DB, foreground bool, only string) (*outbox.RebuildState, error) {
	rs, err := outbox.Rebuilds(ctx, db)
	if err != nil {
		return nil, err
	}
	for _, x := range rs {
		if (only == "" || x.Table == only) && dueFor(x, ix.cfg.holder, foreground) {
			return x, nil
		}
	}
	return nil, nil
}

// sideDue does a side step of r, which is in its side phase, and reports
// progress; it reports false (for the step in the main file to start the
// rebuild over, or discard it) when the table's spec changed.
func (ix *Indexer) sideDue(ctx context.Context, r *outbox.RebuildState) (bool, error) {
	reg, err := ix.registry.load(ctx, ix.db)
	if err != nil {
		return false, err
	}
	t := reg[r.Table]
	if t == nil || t.err != nil || !sameSpec(outbox.NextGeneration(t.spec), r.Spec) {
		return false, nil
	}
	raw, err := json.Marshal(r.Spec)
	if err != nil {
		return false, err
	}
	mt := ix.mirrors.get(r.Table, string(raw))
	if mt.err != nil {
		return false, nil
	}
	t0 := time.Now()
	if err := ix.sideStep(ctx, r, t, mt); err != nil {
		if errors.Is(err, errSideGone) {
			return true, nil
		}
		return false, fmt.Errorf("indexer: rebuild: %w", err)
	}
	ix.log.Debug("rebuild step", "table", r.Table, "phase", outbox.PhaseSide, "done", r.Done, "chunk", ix.online.sideChunk, "took", time.Since(t0))
	ix.reportStep(r, time.Since(t0))
	return true, nil
}

// reportStep reports a rebuild step to the progress display and the
// observer.
func (ix *Indexer) reportStep(r *outbox.RebuildState, d time.Duration) {
	if f := ix.cfg.progress; f != nil {
		f(Progress{Table: r.Table, Sidecar: rebuildLabel(r), Done: r.Done, Total: max(r.Total, r.Done), Phase: r.Phase})
	}
	if f := ix.cfg.observer.Rebuild; f != nil {
		f(RebuildStats{Table: r.Table, Phase: r.Phase, Done: r.Done, Total: r.Total, Duration: d})
	}
}

// yield pauses between two write transactions of the indexer that follow
// each other (rebuild steps, the apply batches of a backlog, an embedding
// round's transactions) so that a writer waiting for the write lock
// (polling every millisecond or two) gets it: back to back, the next BEGIN
// IMMEDIATE comes within a fraction of a millisecond of the commit, and a
// waiting writer almost never polls inside that gap.
func (ix *Indexer) yield(ctx context.Context) error {
	return sleep(ctx, max(ix.cfg.rebuildStep/8, 2*time.Millisecond))
}

// rebuildLabel names the sidecars a rebuild builds, for progress displays.
func rebuildLabel(r *outbox.RebuildState) string {
	var names []string
	for _, v := range r.Spec.VecSpecs() {
		names = append(names, v.Live())
	}
	if r.Spec.FTS != nil {
		names = append(names, r.Spec.FTS.Live())
	}
	return strings.Join(names, ",")
}

// rebuildStepTx does one step of the oldest rebuild in tx. It returns the
// rebuild's state after the step (nil when it ended).
func (ix *Indexer) rebuildStepTx(ctx context.Context, tx *sql.Tx, foreground bool, only string) (bool, *outbox.RebuildState, error) {
	r, err := ix.dueRebuild(ctx, tx, foreground, only)
	if err != nil || r == nil {
		return false, nil, err
	}
	r.Driver = ix.cfg.holder
	reg, err := ix.registry.load(ctx, tx)
	if err != nil {
		return false, nil, err
	}
	t := reg[r.Table]
	if t == nil || t.err != nil {
		ix.log.Warn("rebuild: the table is no longer registered (or its entry is unusable); discarded", "table", r.Table)
		return true, nil, outbox.DiscardRebuild(ctx, tx, r.Table)
	}
	switch r.Phase {
	case outbox.PhaseRequeue:
		return ix.requeueStep(ctx, tx, r, t)
	case outbox.PhaseDrop:
		return ix.dropStep(ctx, tx, r)
	}
	raw, err := json.Marshal(r.Spec)
	if err != nil {
		return false, nil, err
	}
	mt := ix.mirrors.get(r.Table, string(raw))
	restart := mt.err != nil || !sameSpec(outbox.NextGeneration(t.spec), r.Spec)
	// The new generation's tables are in the main file except in the side
	// phase and before the move's first step.
	inMain := r.Phase != outbox.PhaseSide && (r.Phase != outbox.PhaseMove || r.After != nil)
	if !restart && inMain {
		for _, s := range mt.sinks {
			ok, err := s.Exists(ctx, tx)
			if err != nil {
				return false, nil, err
			}
			restart = restart || !ok
		}
	}
	if restart {
		ix.log.Warn("rebuild: the spec or the tables being built changed; starting over", "table", r.Table)
		return true, nil, ix.startRebuild(ctx, tx, t)
	}
	states := outbox.VecStatesTable(r.Table)
	switch r.Phase {
	case outbox.PhaseSide:
		return false, nil, nil // stepped in its side file (sideDue)
	case outbox.PhaseMove, outbox.PhaseCatchUp:
		err := ix.fromSideStep(ctx, tx, r, t, mt)
		if errors.Is(err, errSideGone) {
			ix.log.Warn("rebuild: the side file is gone; starting over", "table", r.Table, "err", err)
			return true, nil, ix.startRebuild(ctx, tx, t)
		}
		if err != nil {
			return false, nil, err
		}
	case outbox.PhaseScan:
		head, err := outbox.Head(ctx, tx)
		if err != nil {
			return false, nil, err
		}
		if ix.online.scan <= 0 {
			ix.online.scan = 20000
		}
		hi := min(r.Scanned+ix.online.scan, head)
		t0 := time.Now()
		if err := ix.foldStates(ctx, tx, mt, states, r.Scanned, hi); err != nil {
			return false, nil, err
		}
		ix.online.scan = tune(ix.online.scan, time.Since(t0), ix.stepBudget(), 1000, 1<<22)
		r.Scanned = hi
		if hi >= head {
			r.Phase = outbox.PhaseCopy
		}
	case outbox.PhaseCopy:
		tc := time.Now()
		if err := ix.catchUpTx(ctx, tx); err != nil {
			return false, nil, err
		}
		ix.online.catchUpTime = time.Since(tc)
		head, err := outbox.Head(ctx, tx)
		if err != nil {
			return false, nil, err
		}
		if len(mt.vecs) > 0 && head > r.Scanned {
			if err := ix.foldStates(ctx, tx, mt, states, r.Scanned, head); err != nil {
				return false, nil, err
			}
		}
		r.Scanned = max(r.Scanned, head)
		if ix.online.chunk <= 0 {
			ix.online.chunk = 256
		}
		// What the last step spent besides copying (catching up,
		// bookkeeping, FTS5's incremental merge at commit) is spent again:
		// the copy gets the rest.
		budget := ix.workBudget()
		t0 := time.Now()
		hi, rows, last, err := nextRange(ctx, tx, t.spec, r.After, ix.online.chunk)
		if err != nil {
			return false, nil, err
		}
		kr := outbox.KeyRange{VecStates: states}
		kr.Cond, kr.Args = rangeCond(t.spec, r.After, hi, last)
		for _, s := range mt.sinks {
			if _, err := s.(outbox.Copier).CopyRange(ctx, tx, kr); err != nil {
				return false, nil, err
			}
		}
		ix.online.copyTime = time.Since(t0)
		ix.online.chunk = int(tune(int64(ix.online.chunk), ix.online.copyTime, budget, 16, 100000))
		r.Done += rows
		if last {
			r.Phase = outbox.PhaseMerge
			r.Total = r.Done
		} else {
			r.After = hi
		}
	case outbox.PhaseMerge:
		t1 := time.Now()
		merged, err := ix.mergeOnly(ctx, tx, mt, false)
		if err != nil {
			return false, nil, err
		}
		ix.online.mergeTime = time.Since(t1)
		if merged {
			break
		}
		// The swap: everything is applied (to both generations), the new
		// one becomes the registry's live generation.
		if err := ix.catchUpTx(ctx, tx); err != nil {
			return false, nil, err
		}
		if err := ix.swap(ctx, tx, r, t, mt); err != nil {
			return false, nil, err
		}
	}
	if err := outbox.SaveRebuild(ctx, tx, r); err != nil {
		return false, nil, err
	}
	return true, r, nil
}

// swap makes the new generation (mt) of r the live one in the registry,
// with the live sidecars' settings (no automatic FTS5 merges: the indexer
// merges them, see merge.go), and moves r to its requeue phase (derived
// vectors) or its drop phase. Everything is applied to both generations
// in tx.
func (ix *Indexer) swap(ctx context.Context, tx *sql.Tx, r *outbox.RebuildState, t, mt *table) error {
	if err := liveSettings(ctx, tx, mt); err != nil {
		return err
	}
	if err := outbox.SwapSpec(ctx, tx, mt.spec); err != nil {
		return err
	}
	// The new generation's own key floors (catch-up) have served: it is
	// applied to the head, like the live one.
	if err := outbox.DeleteKeyFloors(ctx, tx, outbox.NextFloors(r.Table)); err != nil {
		return err
	}
	r.Old = nil
	for _, s := range t.sinks {
		r.Old = append(r.Old, s.Name())
	}
	r.Phase, r.After = outbox.PhaseDrop, nil
	r.SwappedAt = time.Now()
	if len(mt.spec.DerivedVecs()) > 0 {
		// Every row is queued for embedding first (requeue.go).
		r.Phase, r.Total, r.Done = outbox.PhaseRequeue, r.Done, 0
	}
	ix.log.Info("rebuild: swapped in the new generation", "table", r.Table, "sidecars", sinkNames(mt), "rows", max(r.Done, r.Total))
	return nil
}

// Bounds of what a drop step reads before it takes the lock.
const (
	minPrefetchBytes = 1 << 20
	maxPrefetchBytes = 256 << 20
	maxPrefetchRows  = 1 << 16
)

// prefetchDrop reads, before a drop step takes the write lock, the rows of
// the previous generation the step deletes first (outbox.PrefetchShrink),
// once a step of this drop has shown cold reads (dropStep sets
// dropAheadFor): SQLite reads every overflow page of a row it deletes, and
// a cold read from a slow disk under the lock stalls every writer (a
// 1M-row drop phase deleted one 1.5 MB vector chunk a second at 64-96%
// iowait). Until then it reads nothing: with the pages in memory the
// deletes are fast, and the read would only cost CPU (at 1M rows on a
// machine with the file in memory, 25 of the drop phase's 45 s went to
// reading 1.5 MB chunks that the steps then deleted in 15 ms each, 1 ms a
// chunk). It runs without applyMu, which its callers hold: the read can be
// slow, and it shares nothing with apply. The step deletes no row the
// read did not cover.
func (ix *Indexer) prefetchDrop(ctx context.Context, r *outbox.RebuildState) error {
	ix.online.dropBound = outbox.ShrinkBound{}
	if len(r.Old) == 0 || time.Since(r.SwappedAt) < ix.cfg.dropGrace || !ix.online.dropAheadFor.Equal(r.StartedAt) {
		return nil
	}
	if ix.online.prefetchRows <= 0 {
		ix.online.prefetchRows, ix.online.prefetchBytes = 1024, 8<<20
	}
	rows, bytes := ix.online.prefetchRows, ix.online.prefetchBytes
	ix.applyMu.Unlock()
	t0 := time.Now()
	// A long read (a cold, slow disk) would keep the lock idle and this
	// driver silent: it stops early, and the step deletes what it read.
	b, err := outbox.PrefetchShrink(ctx, ix.db, r.Old[0], outbox.PrefetchBudget{Rows: rows, Bytes: bytes, Time: prefetchTime})
	took := time.Since(t0)
	ix.applyMu.Lock()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Only a warm-up: the step then deletes with no bound.
		ix.log.Warn("rebuild: reading the old generation ahead of its drop", "table", r.Table, "old", r.Old[0], "err", err)
		return nil
	}
	ix.online.dropBound = b
	ix.log.Debug("rebuild: drop prefetch", "table", r.Table, "shadow", b.Table, "rows", b.Rows, "bytes", b.Bytes, "took", took)
	return nil
}

// coldDrop is how many times its budget a drop step that read nothing
// ahead may spend deleting before the drop reads ahead (prefetchDrop):
// deletes that read memory keep to the budget (each call starts at one
// row and sizes the next batches on the time per row), and one that
// overran it threefold read the disk. On a cold, slow disk that first
// step holds the lock for one row's reads (a 1.5 MB vector chunk: 0.2-0.3
// s at 7 MB/s); every later one reads ahead. (cfg.coldDrop, which tests
// change.)
const coldDrop = 3

// dropStep drops one table of the previous generation, once the swap is
// dropGrace old (a query that read the registry before the swap may still
// be about to read the old tables), and ends the rebuild after the last.
func (ix *Indexer) dropStep(ctx context.Context, tx *sql.Tx, r *outbox.RebuildState) (bool, *outbox.RebuildState, error) {
	if time.Since(r.SwappedAt) < ix.cfg.dropGrace {
		return false, nil, nil
	}
	if len(r.Old) > 0 {
		// Empty the old table in steps first: DROP frees every page of it
		// in one statement. (Steps of a third of the budget instead were
		// measured at 1M rows: as many slow application writes, a drop
		// phase 9 s longer; docs/PERFORMANCE.md.)
		// The bound is kept for a retry of this step (a busy database):
		// the next step's read replaces it.
		var opts []outbox.ShrinkOption
		b := ix.online.dropBound
		if b.Rows > 0 {
			// A bound on another table's shadow bounds nothing.
			opts = append(opts, outbox.ShrinkUpTo(b))
		}
		t0 := time.Now()
		done, err := outbox.ShrinkTable(ctx, tx, r.Old[0], ix.stepBudget()*3/4, opts...)
		ix.online.copyTime, ix.online.shrunk = time.Since(t0), r.Old[0]
		if err != nil {
			return false, nil, err
		}
		if !ix.online.dropAheadFor.Equal(r.StartedAt) && ix.online.copyTime > time.Duration(ix.cfg.coldDrop)*ix.stepBudget() {
			ix.online.dropAheadFor = r.StartedAt
			ix.log.Debug("rebuild: drop phase reads ahead", "table", r.Table, "old", r.Old[0], "rows", done.Rows, "took", ix.online.copyTime)
		}
		if b.Rows > 0 && done.Rows > 0 {
			// The next read covers twice what this step deleted: the
			// next step's rows, and as many again should they go faster
			// (rows are alike within a shadow table; a step that starts
			// on the next one deletes one row first anyway).
			ix.online.prefetchRows = int(min(2*done.Rows, maxPrefetchRows))
			ix.online.prefetchBytes = min(max(2*done.Rows*b.Bytes/int64(b.Rows), minPrefetchBytes), maxPrefetchBytes)
		}
		if done.Left {
			return true, r, outbox.SaveRebuild(ctx, tx, r)
		}
		if err := outbox.DropTables(ctx, tx, r.Old[0]); err != nil {
			return false, nil, err
		}
		r.Old = r.Old[1:]
		if len(r.Old) > 0 {
			return true, r, outbox.SaveRebuild(ctx, tx, r)
		}
	}
	if err := outbox.DropTables(ctx, tx, outbox.VecStatesTable(r.Table)); err != nil {
		return false, nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM oi_rebuild WHERE tbl = ?`, r.Table); err != nil {
		return false, nil, fmt.Errorf("rebuild %s: %w", r.Table, err)
	}
	ix.log.Info("rebuild: finished", "table", r.Table, "rows", r.Done, "elapsed", time.Since(r.StartedAt).Round(time.Millisecond).String())
	return true, r, nil
}

// catchUpTx applies, inside tx, the events pending in the log, so that the
// checkpoint reaches the head read in tx (it holds the write lock: no
// other event can appear). Like SyncTx it needs no lease. It gives up with
// errBehind when more than a few batches are pending, or when an event
// fails (the lease holder retries and parks it).
func (ix *Indexer) catchUpTx(ctx context.Context, tx *sql.Tx) error {
	for range 4 {
		cp, err := outbox.Checkpoint(ctx, tx, outbox.MainCheckpoint)
		if err != nil {
			return err
		}
		head, err := outbox.Head(ctx, tx)
		if err != nil {
			return err
		}
		if cp >= head {
			return nil
		}
		if head-cp > int64(2*ix.cfg.batchSize) {
			return errBehind
		}
		res, err := ix.applyTx(ctx, tx, &ix.registry, map[unit]string{}, ix.cfg.now(), ix.cfg.batchSize)
		var ue *unitError
		if errors.As(err, &ue) {
			return errBehind
		}
		if err != nil {
			return err
		}
		if res.final {
			return nil
		}
	}
	return errBehind
}

// foldStates folds the log events in (lo, hi] into the vector-state table.
func (ix *Indexer) foldStates(ctx context.Context, tx outbox.DB, mt *table, states string, lo, hi int64) error {
	if hi <= lo {
		return nil
	}
	for _, v := range mt.vecs {
		if _, err := tx.ExecContext(ctx, v.StatesSQL(states), mt.spec.Source, lo, hi); err != nil {
			return fmt.Errorf("rebuild %s: vector states: %w", mt.spec.Source, err)
		}
	}
	return nil
}

// mergeOnly does one merge step of the merge phase and reports whether
// there was work; with whole, toward a single segment (Merger.Merge with
// a negative page count).
func (ix *Indexer) mergeOnly(ctx context.Context, tx outbox.DB, mt *table, whole bool) (bool, error) {
	if ix.online.pages <= 0 {
		ix.online.pages = 64
	}
	any := false
	for _, s := range mt.sinks {
		m, ok := s.(outbox.Merger)
		if !ok {
			continue
		}
		t0 := time.Now()
		pages := ix.online.pages
		if whole {
			pages = -pages
		}
		wrote, err := m.Merge(ctx, tx, pages)
		if err != nil {
			return false, err
		}
		if wrote > 0 {
			ix.online.pages = tuneMerge(ix.online.pages, wrote, time.Since(t0), ix.workBudget())
		}
		any = any || wrote > 0
	}
	return any, nil
}

// tuneMerge sizes the next merge step of pages pages that wrote wrote rows
// in d, for target: like tune, except that it grows only after a step
// that used its budget up. A step that ran out of work early says nothing
// of what a full one takes (a slice that merged a few small segments in
// 1 ms once grew the budget to 100,000 pages, and the next merge of a
// large level held the write lock for 2.5 s).
func tuneMerge(pages int, wrote int64, d, target time.Duration) int {
	next := int(tune(int64(pages), d, target, 4, 100000))
	if wrote < int64(pages) {
		next = min(next, pages)
	}
	return next
}

// tuneWork scales work, the copying budget of a move step whose lock hold
// was hold, so that the next one holds the lock for about target: a move
// step's commit writes what it copied, so its cost grows with the copy
// (at 1M rows, commits of 10-17 ms after copies of 8-11 ms), and taking a
// fixed overhead off the step's budget (workBudget) left the copy at its
// floor and the holds at 26-30 ms for a 20 ms step. Smoothed like tune,
// never more than doubled, within [minMoveWork, max(target, minMoveWork)].
func tuneWork(work, hold, target time.Duration) time.Duration {
	if hold <= 0 || work <= 0 {
		return work
	}
	est := time.Duration(float64(work) * float64(target) / float64(hold))
	next := min((work+est)/2, 2*work)
	return min(max(next, minMoveWork), max(target, minMoveWork))
}

// tune scales n so that the next step takes about target, given that this
// one took d, smoothed and clamped to [lo, hi].
func tune(n int64, d, target time.Duration, lo, hi int64) int64 {
	if d <= 0 {
		d = time.Microsecond
	}
	est := float64(n) * float64(target) / float64(d)
	next := int64((float64(n) + est) / 2)
	// Never more than double at once.
	next = min(next, 2*n)
	return min(max(next, lo), hi)
}

// nextRange returns the upper bound of the next key range of spec's source
// table after after (nil: from the first key) holding up to n rows, the
// number of rows in it, and whether it is the last range (then hi is
// unused: the range is every key after after).
func nextRange(ctx context.Context, tx outbox.DB, spec *outbox.Spec, after any, n int) (hi any, rows int64, last bool, err error) {
	src, key := outbox.Quote(spec.Source), outbox.Quote(spec.Key)
	if after == nil {
		err = tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT %[2]s FROM %[1]s ORDER BY %[2]s LIMIT 1 OFFSET ?`, src, key), n-1).Scan(&hi)
	} else {
		err = tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT %[2]s FROM %[1]s WHERE %[2]s > ? ORDER BY %[2]s LIMIT 1 OFFSET ?`, src, key), after, n-1).Scan(&hi)
	}
	if errors.Is(err, sql.ErrNoRows) {
		cond, args := rangeCond(spec, after, nil, true)
		err = tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %s s WHERE %s`, src, cond), args...).Scan(&rows)
		if err != nil {
			return nil, 0, false, fmt.Errorf("rebuild %s: count rows: %w", spec.Source, err)
		}
		return nil, rows, true, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("rebuild %s: next key range: %w", spec.Source, err)
	}
	if b, ok := hi.([]byte); ok {
		hi = string(b)
	}
	nk, err := outbox.NormalizeKey(hi)
	if err != nil {
		return nil, 0, false, fmt.Errorf("rebuild %s: next key range: %w", spec.Source, err)
	}
	return nk, int64(n), false, nil
}

// rangeCond returns the SQL condition on the source (alias s) of the key
// range (after, hi], or (after, ∞) when last.
func rangeCond(spec *outbox.Spec, after, hi any, last bool) (string, []any) {
	col := "s." + outbox.Quote(spec.Key)
	switch {
	case after == nil && last:
		return "1", nil
	case after == nil:
		return col + " <= ?", []any{hi}
	case last:
		return col + " > ?", []any{after}
	}
	return col + " > ? AND " + col + " <= ?", []any{after, hi}
}

// discardRebuilds drops the online rebuilds of names (the offline Rebuild
// replaces what they were building).
func discardRebuilds(ctx context.Context, tx outbox.DB, names []string) error {
	for _, n := range names {
		if err := outbox.DiscardRebuild(ctx, tx, n); err != nil {
			return err
		}
	}
	return nil
}

// liftedLevel is the level a rebuilt FTS5 index's segments start from
// once the rebuild moves them into the main file (ftssink's LiftLevels).
// Left where the build put them (a few levels, up to three segments each,
// the largest on top), the merges of the first few hundred writes after
// the swap reach them and rewrite the whole index, in pieces that hold
// the write lock for as long as the most common term's list of documents
// takes to merge (up to 1.4 s at 1M rows); from level 12 on, they are
// reached after 4^12 writes of one segment each.
const liftedLevel = 12

// levelLifter is a sink whose index can be lifted (ftssink.Table).
type levelLifter interface {
	LiftLevels(ctx context.Context, db outbox.DB, level int) error
}

var _ levelLifter = (*ftssink.Table)(nil)

// liftLevels lifts the FTS5 indexes of mt, a generation just moved from
// a side file into the main file or rebuilt offline, to liftedLevel. A
// generation built in the main file online is not lifted: the indexer's
// connections wrote it through FTS5, which caches its structure per
// connection. An index whose structure record this package cannot read
// (a future FTS5) is left where it is: the lift only spares merges.
func (ix *Indexer) liftLevels(ctx context.Context, tx outbox.DB, mt *table) error {
	for _, s := range mt.sinks {
		if l, ok := s.(levelLifter); ok {
			err := l.LiftLevels(ctx, tx, liftedLevel)
			if errors.Is(err, ftssink.ErrStructure) {
				ix.log.Warn("rebuild: FTS5 index not lifted: its structure record is not one this package reads", "table", mt.spec.Source, "err", err)
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// liveSettings gives the sidecars of mt that merge (FTS5) the settings of
// a live sidecar (Merger.Bulk off): set at the swap, and when a side
// file's generation lands in the main file, so that neither its catch-up
// nor anything after merges inside a commit.
func liveSettings(ctx context.Context, tx outbox.DB, mt *table) error {
	for _, s := range mt.sinks {
		if m, ok := s.(outbox.Merger); ok {
			if err := m.Bulk(ctx, tx, false); err != nil {
				return err
			}
		}
	}
	return nil
}
