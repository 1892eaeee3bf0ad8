package indexer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

// onlineSteps makes an online rebuild take many short steps: 1 ms each,
// 50 ms under the race detector. The race detector slows the translated
// SQLite tens of times, and a step's fixed part (its transaction, attaching
// the side file, preparing its statements) most of all: with 5 ms steps,
// TestOnlineRebuildFollowsWrites/external took 829 move and 1225 drop steps
// (5 and 16 without it) and 128 s; 50 ms keeps the step counts near those
// of a 1 ms run without it.
func onlineSteps() indexer.Option {
	if raceEnabled {
		return indexer.WithRebuildStep(50 * time.Millisecond)
	}
	return indexer.WithRebuildStep(time.Millisecond)
}

// livePageSizes returns the FTS5 leaf page size ('pgsz') of every live
// FTS5 sidecar: 1000 bytes (ftssink's live size), whichever way it was
// built, or 0 when FTS5's default is left.
func (e *env) livePageSizes() map[string]int {
	e.t.Helper()
	specs, _, err := outbox.LoadSpecs(e.ctx, e.sql)
	require.NoError(e.t, err)
	out := map[string]int{}
	for _, s := range specs {
		if s.FTS == nil {
			continue
		}
		n := s.FTS.Live()
		var v int
		err := e.sql.QueryRowContext(e.ctx, `SELECT coalesce((SELECT v FROM `+outbox.Quote(n+"_config")+` WHERE k = 'pgsz'), 0)`).Scan(&v)
		require.NoError(e.t, err)
		out[n] = v
	}
	return out
}

// requireLivePageSizes checks that every live FTS5 sidecar writes small
// leaves (see ftssink.Table.Fill).
//
// It also checks the live merge settings: no automatic merges (the
// indexer merges live sidecars itself; see merge.go) and crisis merges
// only at 64 segments, on a generation built in a side file or in the
// main file alike.
func (e *env) requireLivePageSizes() {
	e.t.Helper()
	sizes := e.livePageSizes()
	require.NotEmpty(e.t, sizes)
	for n, v := range sizes {
		require.Equal(e.t, 1000, v, "pgsz of %s", n)
		// hashsize: FTS5's default 1 MB (-1: absent, the default too),
		// not the side file's buffer for a whole build step.
		for k, want := range map[string]int{"automerge": 0, "crisismerge": 64, "hashsize": 1 << 20} {
			var got int
			err := e.sql.QueryRowContext(e.ctx, `SELECT coalesce((SELECT v FROM `+outbox.Quote(n+"_config")+` WHERE k = ?), -1)`, k).Scan(&got)
			require.NoError(e.t, err)
			if k == "hashsize" && got == -1 {
				continue
			}
			require.Equal(e.t, want, got, "%s of %s", k, n)
		}
	}
}

// leftovers lists the tables of generations that are not live and the
// rebuild bookkeeping that remain.
func (e *env) leftovers() []string {
	e.t.Helper()
	live := map[string]bool{}
	specs, _, err := outbox.LoadSpecs(e.ctx, e.sql)
	require.NoError(e.t, err)
	for _, s := range specs {
		for _, v := range s.VecSpecs() {
			live[v.Live()] = true
		}
		if s.FTS != nil {
			live[s.FTS.Live()] = true
		}
	}
	rows, err := e.sql.QueryContext(e.ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' OR name LIKE 'oi_rebuild_vec_%' ORDER BY name`)
	require.NoError(e.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		require.NoError(e.t, rows.Scan(&n))
		if !live[n] {
			out = append(out, n)
		}
	}
	require.NoError(e.t, rows.Err())
	var pending int64
	require.NoError(e.t, e.sql.QueryRow(`SELECT count(*) FROM oi_rebuild`).Scan(&pending))
	if pending > 0 {
		out = append(out, fmt.Sprintf("%d oi_rebuild rows", pending))
	}
	require.NoError(e.t, e.sql.QueryRow(`SELECT count(*) FROM oi_floor WHERE tbl LIKE 'next:%'`).Scan(&pending))
	if pending > 0 {
		out = append(out, fmt.Sprintf("%d key floors of a new generation", pending))
	}
	// Side files (and their -wal and -shm files).
	entries, err := os.ReadDir(filepath.Dir(e.path))
	require.NoError(e.t, err)
	for _, f := range entries {
		if strings.Contains(f.Name(), ".oi-rebuild-") {
			out = append(out, f.Name())
		}
	}
	return out
}

// Queries that run while an online rebuild builds, swaps and drops see a
// complete index every time: the old generation until the swap, the new
// one after it, never a half-built one.
func TestOnlineRebuildQueriesSeeACompleteIndex(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, mode, outbox.ModeInTable)
			const n = 600
			for i := 1; i <= n; i++ {
				e.createDoc(Doc{ID: int64(i), Title: fmt.Sprintf("title %d", i), Body: "common words"}, vec(i))
			}
			ix := e.indexer(onlineSteps())
			e.drain(ix)

			ctx, cancel := context.WithCancel(e.ctx)
			var wg sync.WaitGroup
			var queries atomic.Int64
			errs := make(chan error, 4)
			for r := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(r), 1))
					for ctx.Err() == nil {
						hits, err := ftssink.Search[Doc](ctx, e.db, ftssink.Term("common"), ftssink.WithLimit(2*n))
						if err == nil && len(hits) != n {
							err = fmt.Errorf("search found %d of %d rows", len(hits), n)
						}
						if err == nil {
							id := 1 + rng.IntN(n)
							var res []vecsink.Result[Doc]
							res, err = vecsink.KNN[Doc](ctx, e.db, vec(id), 1)
							if err == nil && (len(res) != 1 || res[0].Model.ID != int64(id)) {
								err = fmt.Errorf("KNN of row %d's vector: %+v", id, res)
							}
						}
						if err != nil && ctx.Err() == nil {
							errs <- err
							return
						}
						queries.Add(1)
					}
				}()
			}
			var steps int
			ix2 := e.indexer(onlineSteps(), indexer.WithProgress(func(indexer.Progress) { steps++ }))
			require.NoError(t, ix2.Rebuild(e.ctx, "docs"))
			cancel()
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			t.Logf("%s: %d queries during a rebuild of %d steps", mode, queries.Load(), steps)
			require.Greater(t, steps, 5, "the rebuild took several steps")
			require.Positive(t, queries.Load())
			require.Equal(t, 1, e.live(e.docs).Vec.Gen)
			require.Empty(t, e.leftovers())
			e.check()
		})
	}
}

// Writes of every kind between the steps of an online rebuild, to keys
// already copied and keys not yet copied, end up exactly in the new
// generation; nothing is parked.
func TestOnlineRebuildFollowsWrites(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, mode, outbox.ModeContentless)
			e.seed(400)
			e.requireLivePageSizes()
			ix := e.indexer(onlineSteps())
			e.drain(ix)
			rng := rand.New(rand.NewPCG(uint64(len(mode)), 2))
			next := int64(2000)
			notes := 200
			live := map[int64]bool{}
			for i := int64(1); i <= 400; i++ {
				live[i] = true
			}
			pickLive := func() int64 {
				for {
					k := 1 + rng.Int64N(next)
					if live[k] {
						return k
					}
				}
			}
			write := func() {
				for range 1 + rng.IntN(4) {
					switch rng.IntN(7) {
					case 0:
						next++
						e.createDoc(Doc{ID: next, Title: fmt.Sprintf("new %d", next), Body: "fresh text"}, vec(int(next)))
						live[next] = true
					case 1:
						e.updateDoc(pickLive(), map[string]any{"title": fmt.Sprintf("edited %d", rng.IntN(100))}, false, nil)
					case 2:
						e.updateDoc(pickLive(), map[string]any{"body": "changed body"}, true, vec(rng.IntN(500)))
					case 3:
						e.softDeleteDoc(pickLive())
					case 4:
						e.restoreDoc(pickLive())
					case 5:
						k := pickLive()
						e.hardDeleteDoc(k)
						delete(live, k)
					case 6:
						notes++
						e.createNote(Note{ID: fmt.Sprintf("n%03d", notes), Text: fmt.Sprintf("late note %d", notes)}, vec(3000+notes))
					}
				}
			}
			var phases []string
			// Compaction runs meanwhile (another indexer's): the side
			// file's catch-up still finds every event it needs.
			compactor := e.indexer()
			steps := 0
			ix2 := e.indexer(onlineSteps(), indexer.WithProgress(func(p indexer.Progress) {
				phases = append(phases, p.Phase)
				write()
				if steps++; p.Table == "docs" && p.Phase != outbox.PhaseDrop && steps%5 == 0 {
					_, err := compactor.Compact(e.ctx)
					require.NoError(t, err)
				}
			}))
			require.NoError(t, ix2.Rebuild(e.ctx))
			t.Logf("phases: %v", countPhases(phases))
			// docs (integer keys) is built in a side file, notes (text
			// keys) in the main file.
			for _, p := range []string{outbox.PhaseMove, outbox.PhaseCatchUp, outbox.PhaseCopy, outbox.PhaseDrop} {
				require.Contains(t, phases, p)
			}
			e.drain(ix2)
			st, err := ix2.Status(e.ctx)
			require.NoError(t, err)
			require.Zero(t, st.DeadLetters)
			require.Empty(t, e.leftovers())
			// Both generations were filled with large leaves and went
			// live with small ones.
			e.requireLivePageSizes()
			// The one built in a side file went live lifted (its
			// segment on level 12; FTS5 keeps the levels an index has
			// had), out of the way of the merges of what is written
			// after it. A segment this small is then moved down and
			// merged with those (FTS5's promotion), so where it is now
			// depends on the writes.
			ft, err := ftssink.NewTable(e.live(e.docs))
			require.NoError(t, err)
			s, err := ft.Structure(e.ctx, e.sql)
			require.NoError(t, err)
			require.Greater(t, len(s.Levels), 12, "%+v", s.Levels)
			e.check()
		})
	}
}

// An online rebuild interrupted (its context cancelled, as by a shutdown)
// keeps its progress; the next Rebuild continues from there, and a Drain
// drives a pending rebuild as well. Until the swap, queries use the old
// generation.
func TestOnlineRebuildResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	e.seed(1500)
	ix := e.indexer(onlineSteps())
	e.drain(ix)

	// interrupt runs a Rebuild of docs that is cancelled once it has
	// copied after rows, and returns the first Done it reported and the
	// rebuild's status after the interruption.
	interrupt := func(after int64) (int64, indexer.RebuildStatus) {
		t.Helper()
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		firstDone := int64(-1)
		ixi := e.indexer(onlineSteps(), indexer.WithProgress(func(p indexer.Progress) {
			if p.Table != "docs" {
				return
			}
			if firstDone < 0 {
				firstDone = p.Done
			}
			if p.Phase != outbox.PhaseDrop && p.Done >= after {
				cancel()
			}
			e.updateDoc(int64(1+p.Done%1500), map[string]any{"title": fmt.Sprintf("during %d", p.Done)}, false, nil)
		}))
		err := ixi.Rebuild(ctx, "docs")
		require.ErrorIs(t, err, context.Canceled)
		// Closing gives the lease up (the cancelled context could not).
		defer ixi.Close()
		st, err := ixi.Status(e.ctx)
		require.NoError(t, err)
		for _, ts := range st.Tables {
			if ts.Table == "docs" {
				require.NotNil(t, ts.Rebuild, "the rebuild is still recorded")
				require.Equal(t, []indexer.SidecarStatus{
					{Name: "docs_vec", Live: "docs_vec", Kind: "vec0", Exists: true, Rows: ts.Sidecars[0].Rows},
					{Name: "docs_fts", Live: "docs_fts", Kind: "fts5", Exists: true, Rows: ts.Sidecars[1].Rows},
				}, ts.Sidecars, "queries still use generation 0")
				require.Equal(t, []string{"docs_vec__g1", "docs_fts__g1"}, ts.Rebuild.Building)
				return firstDone, *ts.Rebuild
			}
		}
		t.Fatal("no status of docs")
		return 0, indexer.RebuildStatus{}
	}
	_, first := interrupt(1)
	require.Equal(t, outbox.PhaseSide, first.Phase)
	require.Positive(t, first.Done)
	require.Positive(t, first.Rate)

	// The next Rebuild continues: its first step starts after what was
	// copied (the rows are not copied again).
	start, resumed := interrupt(1)
	require.Contains(t, []string{outbox.PhaseSide, outbox.PhaseMove}, resumed.Phase)
	require.Greater(t, start, first.Done)
	require.Greater(t, resumed.Done, first.Done)

	// Interrupted again once its move into the main file has started (a
	// side file's rebuild): after a step that leaves the move unfinished,
	// or, when the rest of the move took one step (a fast engine), after
	// the first step of its catch-up. It goes on from there too.
	ctx3, cancel3 := context.WithCancel(e.ctx)
	defer cancel3()
	var stoppedIn string
	ix3 := e.indexer(onlineSteps(), indexer.WithProgress(func(p indexer.Progress) {
		if p.Table == "docs" && stoppedIn == "" && (p.Phase == outbox.PhaseMove || p.Phase == outbox.PhaseCatchUp) {
			stoppedIn = p.Phase
			cancel3()
		}
	}))
	require.ErrorIs(t, ix3.Rebuild(ctx3, "docs"), context.Canceled)
	require.NotEmpty(t, stoppedIn)
	require.NoError(t, ix3.Close())

	// A Drain (as a worker would) finishes it in the background: once
	// the interrupted driver has been silent for a while, it takes the
	// rebuild over (a Drain returns while the old generation waits for
	// its drop grace; the next one drops it).
	d := e.indexer(onlineSteps())
	deadline := time.Now().Add(10 * time.Minute) // minutes under -race
	for len(e.leftovers()) > 0 {
		require.True(t, time.Now().Before(deadline), "the rebuild did not finish: %v", e.leftovers())
		e.drain(d)
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, 1, e.live(e.docs).FTS.Gen)
	e.check()
}

// Dropping a table (its sidecars, registry entry and events, as
// gormplugin.DropTable does) while it is being rebuilt leaves nothing of
// the rebuild behind, and the rebuild of the other tables goes on.
func TestOnlineRebuildDropTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeContentless)
	e.seed(400)
	ix := e.indexer(onlineSteps())
	e.drain(ix)
	dropped := false
	ix2 := e.indexer(onlineSteps(), indexer.WithProgress(func(p indexer.Progress) {
		if dropped || p.Table != "docs" || p.Done < 100 {
			return
		}
		dropped = true
		tx, err := e.sql.BeginTx(e.ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback()
		live := e.live(e.docs)
		require.NoError(t, vecsink.Drop(e.ctx, tx, live))
		require.NoError(t, ftssink.Drop(e.ctx, tx, live))
		require.NoError(t, outbox.DeleteSpec(e.ctx, tx, "docs"))
		_, err = tx.Exec(`DROP TABLE docs`)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	}))
	require.NoError(t, ix2.Rebuild(e.ctx))
	require.True(t, dropped)
	var n int64
	require.NoError(t, e.sql.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'docs%' OR name LIKE 'oi_rebuild_vec_docs%'`).Scan(&n))
	require.Zero(t, n, "nothing of docs is left")
	require.Empty(t, e.leftovers())
	require.Equal(t, 1, e.live(e.notes).Vec.Gen, "notes was rebuilt")
}

// The offline rebuild replaces an online one in progress.
func TestOfflineRebuildDiscardsOnlineOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeInTable, outbox.ModeInTable)
	e.seed(300)
	e.drain(e.indexer())
	ctx, cancel := context.WithCancel(e.ctx)
	ix := e.indexer(onlineSteps(), indexer.WithProgress(func(p indexer.Progress) {
		if p.Done >= 50 {
			cancel()
		}
	}))
	require.ErrorIs(t, ix.Rebuild(ctx, "docs"), context.Canceled)
	require.NotEmpty(t, e.leftovers())
	require.NoError(t, e.indexer(indexer.WithOffline()).Rebuild(e.ctx, "docs"))
	require.Empty(t, e.leftovers())
	require.Zero(t, e.live(e.docs).Vec.Gen, "the offline rebuild keeps the live generation")
	e.check()
}

// The drop phase reads the rows each step deletes before the step takes
// the write lock once a step has shown cold reads (here: the first step,
// whatever it took), so that the deletes find their pages in memory, and
// still empties and drops every table of the previous generation.
func TestOnlineRebuildDropReadsAhead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeInTable, outbox.ModeContentless)
	e.seed(400)
	ix := e.indexer()
	e.drain(ix)
	ix2, logs := dropLogged(t, e, 0)
	require.NoError(t, ix2.Rebuild(e.ctx, "docs"))
	require.Empty(t, e.leftovers())
	e.check()
	read, decided := logs()
	// Every row of the old sidecars' shadow tables with rowids was read
	// ahead of its delete after the first step (which emptied the vec0
	// table's _info): 400 docs, one FTS5 document and one vector each.
	require.GreaterOrEqual(t, read["docs_vec_rowids"], 400, "read ahead: %v", read)
	require.GreaterOrEqual(t, read["docs_fts_docsize"], 400, "read ahead: %v", read)
	require.Positive(t, read["docs_vec_vector_chunks00"], "read ahead: %v", read)
	require.Equal(t, 1, decided)
}

// A drop whose deletes keep to their budget reads nothing ahead, and drops
// as exactly.
func TestOnlineRebuildDropDirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeInTable, outbox.ModeContentless)
	e.seed(400)
	ix := e.indexer()
	e.drain(ix)
	// No step counts as cold, however slow the machine (-race).
	ix2, logs := dropLogged(t, e, 1<<20)
	require.NoError(t, ix2.Rebuild(e.ctx, "docs"))
	require.Empty(t, e.leftovers())
	e.check()
	read, decided := logs()
	require.Empty(t, read)
	require.Zero(t, decided)
}

// dropLogged returns an indexer stepping online rebuilds whose drop reads
// ahead once a step spent cold times its budget (indexer.SetColdDrop), and
// a function returning the rows its drop phase read ahead per shadow table
// and how many times it decided to read ahead.
func dropLogged(t *testing.T, e *env, cold int) (*indexer.Indexer, func() (map[string]int, int)) {
	log, records := debugLog(t)
	ix := e.indexer(onlineSteps(), indexer.WithLogger(log))
	indexer.SetColdDrop(ix, cold)
	return ix, func() (map[string]int, int) {
		read := map[string]int{}
		decided := 0
		for _, rec := range records() {
			switch rec.Msg {
			case "rebuild: drop prefetch":
				read[rec.Shadow] += rec.Rows
			case "rebuild: drop phase reads ahead":
				decided++
			}
		}
		return read, decided
	}
}

// logRecord is what the tests read of the indexer's debug log records.
type logRecord struct {
	Msg, Phase, Shadow string
	Rows, Segments     int
}

// debugLog returns a debug-level JSON logger and a function returning the
// records logged so far.
func debugLog(t *testing.T) (*slog.Logger, func() []logRecord) {
	var mu sync.Mutex
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return log, func() []logRecord {
		mu.Lock()
		defer mu.Unlock()
		var out []logRecord
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec logRecord
			require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
			out = append(out, rec)
		}
		return out
	}
}

// A side file's FTS5 index gets one segment per step and no merges; when
// its segments reach the limit, steps merge instead of copying until one
// is left, and the rebuild goes on to an exact index with the live
// settings.
func TestOnlineRebuildSideMergesDown(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, mode, outbox.ModeContentless)
			e.seed(400)
			ix := e.indexer()
			e.drain(ix)
			log, records := debugLog(t)
			ix2 := e.indexer(onlineSteps(), indexer.WithLogger(log))
			indexer.SetSideChunk(ix2, 25)
			indexer.SetSideMaxSegments(ix2, 6)
			require.NoError(t, ix2.Rebuild(e.ctx, "docs"))
			require.Empty(t, e.leftovers())
			e.check()
			e.requireLivePageSizes()
			merges, copies := 0, 0
			for _, rec := range records() {
				switch {
				case rec.Msg == "rebuild: side merge":
					merges++
					require.GreaterOrEqual(t, rec.Segments, 6)
				case rec.Msg == "rebuild step" && rec.Phase == "side":
					copies++
				}
			}
			// 400 rows in ranges of 25: 16 segments per index, merged
			// down at 6, twice at least.
			require.GreaterOrEqual(t, merges, 2, "side merges")
			require.GreaterOrEqual(t, copies, 16+merges, "side steps")
		})
	}
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// After an online rebuild the queries read the new generation under the
// sidecar's own name: fragments that name the sidecar table, snippets and
// highlights (FTS5 auxiliary functions on the aliased table) keep working.
func TestOnlineRebuildQueriesNameTheSidecar(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeInTable, outbox.ModeInTable)
	e.seed(50)
	ix := e.indexer()
	e.drain(ix)
	require.NoError(t, ix.Rebuild(e.ctx, "docs"))
	require.Equal(t, "docs_fts__g1", e.live(e.docs).FTS.Live())
	hits, err := ftssink.Search[Doc](e.ctx, e.db, ftssink.Term("common"),
		ftssink.WithFilter("docs_fts.rowid <= ?", 10),
		ftssink.WithSnippet("body", "[", "]", "…", 4), ftssink.WithHighlight("title", "<", ">"))
	require.NoError(t, err)
	require.Len(t, hits, 10)
	require.Contains(t, hits[0].Snippets["body"], "[common]")
	res, err := vecsink.KNN[Doc](e.ctx, e.db, vec(7), 3, vecsink.WithFilter("docs_vec.cat = ?", int64(7%3)))
	require.NoError(t, err)
	require.NotEmpty(t, res)
	require.Equal(t, int64(7), res[0].Model.ID)
	for _, r := range res {
		require.Equal(t, int64(1), r.Model.Cat)
	}
	q, _, err := vecsink.KNNSQL[Doc](e.ctx, e.db, vec(7), 3)
	require.NoError(t, err)
	require.Contains(t, q, `"docs_vec__g1" AS "docs_vec"`)
}

func countPhases(ps []string) map[string]int {
	m := map[string]int{}
	for _, p := range ps {
		m[p]++
	}
	return m
}

// An offline rebuild leaves no FTS5 level holding 'usermerge' segments or
// more: rebuilt in many small batches, the index was left for the
// application's next writes to merge (after a 100k-row rebuild, single-row
// inserts took 26–50 ms and one took 326 ms, a crisis merge).
func TestOfflineRebuildMergesFTS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeInTable, outbox.ModeInTable)
	e.seed(400)
	e.drain(e.indexer())
	require.NoError(t, e.indexer(indexer.WithOffline(), indexer.WithRebuildBatchSize(2)).Rebuild(e.ctx, "docs"))
	conn, err := e.sql.Conn(e.ctx)
	require.NoError(t, err)
	defer conn.Close()
	var before, after int64
	require.NoError(t, conn.QueryRowContext(e.ctx, `SELECT total_changes()`).Scan(&before))
	_, err = conn.ExecContext(e.ctx, `INSERT INTO docs_fts (docs_fts, rank) VALUES ('merge', 16)`)
	require.NoError(t, err)
	require.NoError(t, conn.QueryRowContext(e.ctx, `SELECT total_changes()`).Scan(&after))
	require.Less(t, after-before, int64(2), "a merge found work left by the rebuild")
	e.requireLivePageSizes()
	// It went live lifted (segments from level 12 up), and stays exact
	// through writes after it, on a connection that saw it before.
	ft, err := ftssink.NewTable(e.live(e.docs))
	require.NoError(t, err)
	s, err := ft.Structure(e.ctx, e.sql)
	require.NoError(t, err)
	require.Greater(t, len(s.Levels), 12, "%+v", s.Levels)
	for i := range 12 {
		require.Zero(t, s.Levels[i].Segments, "%+v", s.Levels)
	}
	segments := 0
	for _, l := range s.Levels {
		segments += l.Segments
	}
	require.Equal(t, 1, segments, "merged into one segment: %+v", s.Levels)
	for i := int64(1); i <= 40; i++ {
		e.updateDoc(i, map[string]any{"title": fmt.Sprintf("after the lift %d", i)}, false, nil)
	}
	e.drain(e.indexer())
	e.check()
}
