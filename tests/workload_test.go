package tests

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
)

// TestWorkloadLeavesForeignNotesAlone: the workload writes only the notes it
// creates, so a test can keep a note of its own (TestFaultsBadStateParkedNotStalled
// attaches a bad vector to one, which a later write of the key would
// supersede, and then nothing would be parked).
func TestWorkloadLeavesForeignNotesAlone(t *testing.T) {
	t.Parallel()
	db := reliab.Prepare(t, testdb.Path(t))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	// Created first, it is for a while the only note the workload can find.
	require.NoError(t, db.Create(&reliab.Note{ID: "zz-foreign", Text: "foreign"}).Error)
	relWrite(t, db, reliab.NewWorkload("foreign", 5), 300)

	var text string
	var deleted bool
	require.NoError(t, sqlDB.QueryRow(`SELECT text, deleted_at IS NOT NULL FROM notes WHERE id = 'zz-foreign'`).Scan(&text, &deleted))
	require.Equal(t, "foreign", text)
	require.False(t, deleted, "the workload soft-deleted a note it did not create")
	var events, others int
	require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM oi_events WHERE tbl = 'notes' AND key = 'zz-foreign'`).Scan(&events))
	require.Equal(t, 1, events, "the workload wrote a note it did not create")
	require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM oi_events WHERE tbl = 'notes' AND key <> 'zz-foreign'`).Scan(&others))
	require.Positive(t, others, "the workload wrote no note at all")
}
