package main

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

// A sidecar dropped by hand parks the table's events as dead letters;
// `deadletters` lists them, `rebuild` repairs the table, and `--retry`
// re-queues what is left.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := openTickets(t, path)
	r := run(t, nil, "deadletters", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "no dead letters\n", r.stdout)

	writeTickets(t, db, 1, 3)
	require.NoError(t, db.Exec("DROP TABLE tickets_vec").Error)
	r = run(t, nil, "drain", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	m := drainLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	require.Equal(t, "3", m[3], "three dead letters")

	r = run(t, nil, "deadletters", "--db", path, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var dls []deadLetterJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &dls), r.stdout)
	require.Len(t, dls, 3)
	for i, d := range dls {
		require.Equal(t, "tickets", d.Table)
		require.Equal(t, ticketCode(i+1), d.Key)
		require.Equal(t, "insert", d.Op)
		require.Contains(t, d.Error, "tickets_vec")
		require.Positive(t, d.Attempts)
	}
	r = run(t, nil, "deadletters", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `(?m)^ID +TABLE +KEY +OP +ATTEMPTS +FAILED AT +ERROR$`, r.stdout)
	require.Regexp(t, `(?m)^\d+ +tickets +t00002 +insert +\d+ +\S+ +.*tickets_vec`, r.stdout)
	st := status(t, path)
	require.EqualValues(t, 3, st.DeadLetters)
	require.EqualValues(t, 3, st.Tables[0].DeadLetters)

	// Re-queueing an id that is not parked is an error.
	r = run(t, nil, "deadletters", "--db", path, "--retry", "--id", "999")
	require.Equal(t, 1, r.code, r.stdout)

	// Rebuild re-creates the dropped sidecar and folds the dead letters back.
	r = run(t, nil, "rebuild", "--db", path, "--table", "tickets")
	require.Equal(t, 0, r.code, r.stderr)
	st = status(t, path)
	require.EqualValues(t, 0, st.DeadLetters)
	require.EqualValues(t, 3, sidecarRows(t, st, "tickets", "vec0"))

	// Events written while the sidecar is gone are parked behind the same
	// failure; a rebuild folds them back as well.
	{
		sqlDB, err := db.DB()
		require.NoError(t, err)
		live, err := outbox.LiveTable(t.Context(), sqlDB, "tickets_vec") // the rebuild above made a new generation
		require.NoError(t, err)
		require.Equal(t, "tickets_vec__g1", live)
		require.NoError(t, db.Exec("DROP TABLE "+outbox.Quote(live)).Error)
	}
	writeTickets(t, db, 4, 2)
	require.Equal(t, 0, run(t, nil, "drain", "--db", path).code)
	require.NoError(t, json.Unmarshal([]byte(run(t, nil, "deadletters", "--db", path, "--json").stdout), &dls))
	require.Len(t, dls, 2)
	require.Equal(t, 0, run(t, nil, "rebuild", "--db", path, "--table", "tickets").code)
	st = status(t, path)
	require.EqualValues(t, 5, sidecarRows(t, st, "tickets", "vec0"))
	require.EqualValues(t, 0, st.DeadLetters)
}

// --retry re-queues parked events as new events that the next drain applies.
func TestDeadLettersRetry(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := openTickets(t, path)
	writeTickets(t, db, 1, 2)
	// Park the events of the FTS sidecar's table, then put the sidecar back
	// as Migrate created it, so that a plain retry succeeds.
	var ddl string
	require.NoError(t, db.Raw("SELECT sql FROM sqlite_master WHERE name = 'tickets_fts'").Scan(&ddl).Error)
	require.NoError(t, db.Exec("DROP TABLE tickets_fts").Error)
	require.Equal(t, 0, run(t, nil, "drain", "--db", path).code)
	st := status(t, path)
	require.EqualValues(t, 2, st.DeadLetters)
	require.NoError(t, db.Exec(ddl).Error)

	var dls []deadLetterJSON
	require.NoError(t, json.Unmarshal([]byte(run(t, nil, "deadletters", "--db", path, "--json").stdout), &dls))
	require.Len(t, dls, 2)
	r := run(t, nil, "deadletters", "--db", path, "--retry", "--id", itoa(dls[0].ID))
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "re-queued 1 events\n", r.stdout)
	r = run(t, nil, "deadletters", "--db", path, "--retry")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "re-queued 1 events\n", r.stdout)

	st = status(t, path)
	require.EqualValues(t, 0, st.DeadLetters)
	require.EqualValues(t, 2, st.Pending)
	r = run(t, nil, "drain", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	st = status(t, path)
	require.EqualValues(t, 0, st.Pending)
	require.EqualValues(t, 0, st.DeadLetters)
	require.EqualValues(t, 2, sidecarRows(t, st, "tickets", "fts5"))
	require.EqualValues(t, 2, sidecarRows(t, st, "tickets", "vec0"))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
