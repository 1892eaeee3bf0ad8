// Package tests holds the end-to-end tests of outboxindexer that span
// packages and processes: the randomized model test, and the reliability
// tests (crash recovery, concurrency, faults, hostile input) whose figures
// docs/RELIABILITY.md records. Run the long mode of the reliability tests
// with -reliability.long.
package tests

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
)

// TestCrashRecovery runs the writer program (random gorm writes of every
// kind, vectors included, each transaction recorded in a ledger row of its
// own) and `indexer run` as subprocesses, and kills the indexer with SIGKILL
// at random moments, and the writer too at times, restarting them. After a
// final `indexer drain`, the sidecars must equal the reference built from
// the source rows and the ledger, no committed write may be missing, no
// token or vector may be there twice, and the integrity checks must pass.
func TestCrashRecovery(t *testing.T) {
	kills, pause := 6, 300*time.Millisecond
	if *relLong {
		kills, pause = 60, 700*time.Millisecond
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("crash: seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	bins := reliab.Build(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "crash.db")
	journal := filepath.Join(dir, "journal")
	_, sqlDB := reliab.PrepareIndexed(t, path)
	reliab.InstallHistory(t, sqlDB)

	writerN := 0
	startWriter := func() *relProc {
		writerN++
		return relStart(t, bins, bins.Writer, "--db", path, "--id", fmt.Sprintf("w%d", writerN), "--seed", fmt.Sprint(seed+uint64(writerN)), "--journal", journal)
	}
	startIndexer := func() *relProc {
		batch := []string{"1", "7", "50", "1000"}[rng.IntN(4)]
		return relStart(t, bins, bins.Indexer, "run", "--db", path, "--poll-interval", "10ms", "--lease-ttl", "400ms", "--batch-size", batch, "--log-level", "warn")
	}
	checkpoint := func() int64 {
		var cp int64
		require.NoError(t, sqlDB.QueryRow(`SELECT coalesce(max(position), 0) FROM oi_checkpoint WHERE name = 'main'`).Scan(&cp))
		return cp
	}

	writer := startWriter()
	ix := startIndexer()
	writerKills, indexerKills := 0, 0
	var cps []int64
	for k := range kills {
		time.Sleep(pause/3 + time.Duration(rng.Int64N(int64(pause))))
		require.False(t, writer.exited(), "writer died:\n%s", writer.out)
		require.False(t, ix.exited(), "indexer died:\n%s", ix.out)
		ix.kill(t)
		indexerKills++
		if k%3 == 1 {
			writer.kill(t)
			writerKills++
			writer = startWriter()
		}
		cps = append(cps, checkpoint())
		ix = startIndexer()
	}
	time.Sleep(pause)
	// End with the writer stopped one way or the other, and the indexer killed.
	if rng.IntN(2) == 0 {
		writer.kill(t)
		writerKills++
	} else {
		writer.signal(t, syscall.SIGTERM)
		require.Equal(t, 0, writer.wait(t), "writer:\n%s", writer.out)
	}
	ix.kill(t)
	indexerKills++

	drain := relStart(t, bins, bins.Indexer, "drain", "--db", path, "--log-level", "warn")
	require.Equal(t, 0, drain.wait(t), "indexer drain:\n%s", drain.out)

	sum := reliab.Check(t, sqlDB)
	byHolder := reliab.CheckSingleApplier(t, sqlDB)

	// Every transaction the writers saw commit (journal) is in the ledger;
	// the ledger may have a few more: a writer killed between its commit and
	// its journal append loses at most one line.
	f, err := os.Open(journal)
	require.NoError(t, err)
	defer f.Close()
	journaled := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		journaled[sc.Text()] = true
	}
	require.NoError(t, sc.Err())
	rows, err := sqlDB.Query(`SELECT writer, seq FROM wr_ledger`)
	require.NoError(t, err)
	ledger := map[string]bool{}
	for rows.Next() {
		var w string
		var seq int64
		require.NoError(t, rows.Scan(&w, &seq))
		ledger[fmt.Sprintf("%s %d", w, seq)] = true
	}
	require.NoError(t, rows.Err())
	rows.Close()
	var missing []string
	for j := range journaled {
		if !ledger[j] {
			missing = append(missing, j)
		}
	}
	require.Empty(t, missing, "writes the writer saw commit are not in the database")
	require.LessOrEqual(t, len(ledger)-len(journaled), writerKills, "more unjournaled commits than writer kills")

	var head int64
	require.NoError(t, sqlDB.QueryRow(`SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'oi_events'`).Scan(&head))
	require.Greater(t, cps[len(cps)-1], int64(0), "the indexer never applied anything between kills")
	t.Logf("crash: %d SIGKILLs of the indexer, %d of the writer; %d committed transactions, %d events; checkpoint at each kill %s; batches by holder: %d holders; final state %+v",
		indexerKills, writerKills, len(ledger), head, strings.Trim(fmt.Sprint(cps), "[]"), len(byHolder), sum)
}
