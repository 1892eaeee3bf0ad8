package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/stretchr/testify/require"
)

// rebuild on a pipe logs progress lines and draws no bar; it repairs rows
// bulk-loaded with raw SQL that bypassed the capture plugin.
func TestRebuildToNonTerminal(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := openTickets(t, path)
	writeTickets(t, db, 1, 300)
	r := run(t, nil, "drain", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)

	// A bulk load behind gorm's back: the sidecars do not know these rows.
	sqlDB, err := db.DB()
	require.NoError(t, err)
	for i := 1001; i <= 1100; i++ {
		_, err := sqlDB.Exec(`INSERT INTO tickets (code, subject, notes, queue) VALUES (?, ?, 'bulk loaded', 'ops')`, ticketCode(i), fmt.Sprintf("imported %s", ticketCode(i)))
		require.NoError(t, err)
	}
	st := status(t, path)
	require.EqualValues(t, 400, st.Tables[0].SourceRows)
	require.EqualValues(t, 300, sidecarRows(t, st, "tickets", "fts5"))

	r = run(t, nil, "rebuild", "--db", path, "--table", "tickets", "--batch-size", "50", "--log-every", "1ns")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "rebuilt [tickets]\n", r.stdout)
	require.NotContains(t, r.stderr, "\r", "no carriage returns: no bar on a pipe")
	require.NotContains(t, r.stderr, "\x1b", "no terminal escapes on a pipe")
	require.Contains(t, r.stderr, "msg=progress op=\"rebuild tickets\"")
	require.Contains(t, r.stderr, "total=400")
	require.Contains(t, r.stderr, "rebuild finished")
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		require.True(t, strings.HasPrefix(line, "time="), "every stderr line is a log record: %q", line)
	}

	st = status(t, path)
	require.EqualValues(t, 400, sidecarRows(t, st, "tickets", "fts5"), "the bulk-loaded rows are searchable")
	require.EqualValues(t, 300, sidecarRows(t, st, "tickets", "vec0"), "bulk-loaded rows have no vector")
	require.EqualValues(t, 0, st.Pending)
	hits, err := ftssink.Search[Ticket](t.Context(), db, ftssink.Term(ticketCode(1050)))
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, ticketCode(1050), hits[0].Model.Code)

	// The same command with the bar forced draws one (so the absence above
	// is the terminal detection at work, not a bar that never draws).
	r = run(t, nil, "rebuild", "--db", path, "--progress", "bar")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "\r")
	require.Contains(t, r.stderr, "rebuild tickets")
}

func TestReplay(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := openTickets(t, path)
	writeTickets(t, db, 1, 50)
	require.Equal(t, 0, run(t, nil, "drain", "--db", path).code)
	before := status(t, path)

	r := run(t, nil, "replay", "--db", path, "--from", "1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "replayed from 1\n", r.stdout)
	after := status(t, path)
	require.Equal(t, before.Applied, after.Applied, "replay leaves the checkpoint alone")
	require.EqualValues(t, 50, sidecarRows(t, after, "tickets", "vec0"))
	require.EqualValues(t, 50, sidecarRows(t, after, "tickets", "fts5"))
}

// An online rebuild stopped half way shows in status (text and JSON), and
// the next rebuild continues it.
func TestRebuildInterruptedShowsInStatus(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := openTickets(t, path)
	writeTickets(t, db, 1, 2000)
	require.Equal(t, 0, run(t, nil, "drain", "--db", path).code)

	ctx, cancel := context.WithCancel(t.Context())
	ix, err := indexer.New(db, indexer.WithRebuildStep(time.Millisecond), indexer.WithProgress(func(p indexer.Progress) {
		if p.Done > 0 {
			cancel()
		}
	}))
	require.NoError(t, err)
	require.ErrorIs(t, ix.Rebuild(ctx, "tickets"), context.Canceled)
	require.NoError(t, ix.Close())

	st := status(t, path)
	require.Len(t, st.Tables, 1)
	rb := st.Tables[0].Rebuild
	require.NotNil(t, rb)
	require.Equal(t, "copy", rb.Phase)
	require.Positive(t, rb.Done)
	require.EqualValues(t, 2000, rb.Total)
	require.Equal(t, []string{"tickets_vec__g1", "tickets_fts__g1"}, rb.Building)
	r := run(t, nil, "status", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `rebuild of tickets in progress: phase copy, \d+/2000 rows`, r.stdout)

	r = run(t, nil, "rebuild", "--db", path, "--log-every", "1ns")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "rebuild: continuing")
	st = status(t, path)
	require.Nil(t, st.Tables[0].Rebuild)
	require.EqualValues(t, 2000, sidecarRows(t, st, "tickets", "fts5"))
	for _, s := range st.Tables[0].Sidecars {
		require.Equal(t, s.Name+"__g1", s.Live)
	}
}
