package tests

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
)

// relRebuildLeftovers lists what an online rebuild may leave behind: rows of
// oi_rebuild, vector-state tables, and virtual tables that no registry
// entry names as live.
func relRebuildLeftovers(t *testing.T, db *sql.DB) []string {
	t.Helper()
	ctx := context.Background()
	live := map[string]bool{}
	specs, _, err := outbox.LoadSpecs(ctx, db)
	require.NoError(t, err)
	for _, s := range specs {
		for _, v := range s.VecSpecs() {
			live[v.Live()] = true
		}
		if s.FTS != nil {
			live[s.FTS.Live()] = true
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND (sql LIKE 'CREATE VIRTUAL TABLE%' OR name LIKE 'oi_rebuild_vec_%')`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		if !live[n] {
			out = append(out, n)
		}
	}
	require.NoError(t, rows.Err())
	var pending int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM oi_rebuild`).Scan(&pending))
	if pending > 0 {
		out = append(out, fmt.Sprintf("%d rows in oi_rebuild", pending))
	}
	// Side files (a rebuild of an integer-key table builds in one).
	main, err := outbox.MainFile(ctx, db)
	require.NoError(t, err)
	entries, err := os.ReadDir(filepath.Dir(main))
	require.NoError(t, err)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".oi-rebuild-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRebuildOnlineSurvivesSIGKILL runs `indexer rebuild` (online) as a
// subprocess while the application writes through the plugin, and kills it
// with SIGKILL at random moments, over and over (every phase gets hit: the
// scan of the log, the copy, the merge, the swap, the drop). Each new
// process continues the rebuild the killed one left. The application must
// never see an error; after a final uninterrupted rebuild and a drain, the
// sidecars must equal the reference exactly (reliab.Check: vectors, every
// token instance, FTS5 integrity-check) and nothing of the interrupted
// generations may be left.
func TestRebuildOnlineSurvivesSIGKILL(t *testing.T) {
	kills, rows := 20, 1500
	if *relLong {
		kills, rows = 60, 5000
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("rebuild-kill: seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 16))
	bins := reliab.Build(t)
	path := testdb.Path(t)
	db, sqlDB := reliab.PrepareIndexed(t, path)
	ctx := context.Background()
	wl := reliab.NewWorkload("rebuild", seed)
	relWrite(t, db, wl, rows)
	ix, err := indexer.New(db)
	require.NoError(t, err)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	require.NoError(t, ix.Close())

	// The application writes all along, through the plugin.
	var writes atomic.Int64
	var werrs []error
	var wmu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := wl.Step(ctx, db); err != nil {
				wmu.Lock()
				werrs = append(werrs, err)
				wmu.Unlock()
			}
			writes.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	phases := map[string]int{}
	finished := 0
	for range kills {
		p := relStart(t, bins, bins.Indexer, "rebuild", "--db", path, "--step", "5ms", "--log-level", "warn")
		time.Sleep(time.Duration(20+rng.IntN(400)) * time.Millisecond)
		p.kill(t)
		if p.code == 0 {
			finished++
		}
		rs, err := outbox.Rebuilds(ctx, sqlDB)
		require.NoError(t, err)
		if len(rs) == 0 {
			phases["none"]++
		}
		for _, r := range rs {
			phases[r.Phase]++
		}
	}
	p := relStart(t, bins, bins.Indexer, "rebuild", "--db", path, "--step", "5ms", "--log-level", "warn")
	require.Equal(t, 0, p.wait(t), "the final rebuild:\n%s", p.out)
	close(stop)
	wg.Wait()
	require.Empty(t, werrs, "the application saw errors")
	d := relStart(t, bins, bins.Indexer, "drain", "--db", path, "--log-level", "warn")
	require.Equal(t, 0, d.wait(t), "drain:\n%s", d.out)
	sum := reliab.Check(t, sqlDB)
	require.Empty(t, relRebuildLeftovers(t, sqlDB))
	specs, _, err := outbox.LoadSpecs(ctx, sqlDB)
	require.NoError(t, err)
	gens := map[string]int{}
	for _, s := range specs {
		if s.FTS != nil {
			gens[s.Source] = s.FTS.Gen
		}
	}
	t.Logf("rebuild-kill: %d SIGKILLs (phase of the rebuild left behind: %v; %d processes had finished), %d application writes without error, final generations %v, final state %+v",
		kills, phases, finished, writes.Load(), gens, sum)
}
