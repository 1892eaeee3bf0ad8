package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
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
