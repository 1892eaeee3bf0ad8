package main

import (
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

var drainLine = regexp.MustCompile(`^applied (\d+) events, (\d+) pending, (\d+) dead letters\n$`)

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

// The binary drains a database written by this test program with a model
// type it has never seen; the test program then queries its own models.
func TestDrainForeignModel(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := openTickets(t, path)
	writeTickets(t, db, 1, 200)
	require.NoError(t, db.Delete(&Ticket{Code: ticketCode(5)}).Error) // soft delete
	require.NoError(t, db.Model(&Ticket{Code: ticketCode(9)}).Update("subject", "quasar escalation").Error)

	st := status(t, path)
	require.GreaterOrEqual(t, st.Head, int64(202), "positions, not counts: a batch create re-appends its events")
	require.EqualValues(t, 0, st.Applied)
	require.EqualValues(t, 202, st.Pending)
	require.Len(t, st.Tables, 1)
	require.Equal(t, "tickets", st.Tables[0].Table)
	require.EqualValues(t, 200, st.Tables[0].SourceRows)
	require.EqualValues(t, 0, sidecarRows(t, st, "tickets", "vec0"))

	r := run(t, nil, "drain", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	m := drainLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	require.EqualValues(t, 202, atoi(t, m[1]))
	require.Equal(t, "0", m[2])
	require.Equal(t, "0", m[3])
	require.NotContains(t, r.stderr, "\r", "no progress bar on a pipe")
	require.Contains(t, r.stderr, "drain finished")

	st = status(t, path)
	require.Equal(t, st.Head, st.Applied)
	require.EqualValues(t, 0, st.Pending)
	require.EqualValues(t, 200, sidecarRows(t, st, "tickets", "vec0"), "soft-deleted rows stay, flagged")
	require.EqualValues(t, 200, sidecarRows(t, st, "tickets", "fts5"))
	require.False(t, st.Lease.Live, "drain released the lease")

	// The test program's own queries see what the binary applied.
	ctx := t.Context()
	res, err := vecsink.KNN[Ticket](ctx, db, ticketVec(7), 1)
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, ticketCode(7), res[0].Model.Code)
	require.InDelta(t, 0, res[0].Distance, 1e-6)
	res, err = vecsink.KNN[Ticket](ctx, db, ticketVec(5), 1)
	require.NoError(t, err)
	require.NotEqual(t, ticketCode(5), res[0].Model.Code, "soft-deleted ticket is excluded")
	res, err = vecsink.KNN[Ticket](ctx, db, ticketVec(5), 1, vecsink.IncludeDeleted())
	require.NoError(t, err)
	require.Equal(t, ticketCode(5), res[0].Model.Code)
	hits, err := ftssink.Search[Ticket](ctx, db, ftssink.Term("quasar"))
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, ticketCode(9), hits[0].Model.Code)
	hits, err = ftssink.Search[Ticket](ctx, db, ftssink.Term(ticketCode(123)))
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, ticketCode(123), hits[0].Model.Code)

	// Nothing left: a second drain applies nothing.
	r = run(t, nil, "drain", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "applied 0 events, 0 pending, 0 dead letters\n", r.stdout)
}

var interruptedLine = regexp.MustCompile(`^interrupted: applied (\d+) events, (\d+) pending, (\d+) dead letters\n$`)

// SIGTERM during a long drain: the process exits 0 after the batch in
// flight, the checkpoint and the sidecars agree, the lease is released, and
// a later drain finishes the rest.
func TestDrainSIGTERM(t *testing.T) {
	t.Parallel()
	const total = 3000
	path := testdb.Path(t)
	db := openTickets(t, path)
	writeTickets(t, db, 1, total)

	// One event per transaction makes the drain long enough to interrupt;
	// a log line per batch says when it is under way.
	p := start(t, nil, "drain", "--db", path, "--batch-size", "1", "--log-format", "json", "--log-every", "1ns")
	p.waitLogWhere(t, "progress", func(rec map[string]any) bool {
		done, _ := rec["done"].(float64)
		return done > 0
	})
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	r := p.wait(t)
	require.Equal(t, 0, r.code, r.stderr)
	m := interruptedLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, "stdout %q", r.stdout)
	applied, pending := atoi(t, m[1]), atoi(t, m[2])
	require.Positive(t, applied)
	require.Positive(t, pending, "the drain was interrupted before the end")
	require.EqualValues(t, total, applied+pending)
	require.Contains(t, r.stderr, "drain interrupted by signal")

	// Consistent: every event up to the checkpoint is in both sidecars (one
	// event per ticket), none after it.
	st := status(t, path)
	require.Positive(t, st.Applied)
	require.Equal(t, pending, st.Pending)
	require.Equal(t, applied, sidecarRows(t, st, "tickets", "vec0"))
	require.Equal(t, applied, sidecarRows(t, st, "tickets", "fts5"))
	require.False(t, st.Lease.Live, "the lease was released on the way out")

	r = run(t, nil, "drain", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	m = drainLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	require.Equal(t, pending, atoi(t, m[1]))
	st = status(t, path)
	require.EqualValues(t, 0, st.Pending)
	require.EqualValues(t, total, sidecarRows(t, st, "tickets", "vec0"))
	require.EqualValues(t, total, sidecarRows(t, st, "tickets", "fts5"))
	res, err := vecsink.KNN[Ticket](t.Context(), db, ticketVec(total), 1)
	require.NoError(t, err)
	require.Equal(t, ticketCode(total), res[0].Model.Code)
}
