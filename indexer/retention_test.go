package indexer_test

import (
	"testing"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

// requireOneEventPerKey checks that the compacted log holds exactly one
// event per document with a vector (its newest), none of deleted ones,
// and that oi_latest points at it.
func (e *env) requireOneEventPerKey(live map[int64]bool) {
	e.t.Helper()
	rows, err := e.sql.QueryContext(e.ctx, `SELECT key, count(*), max(id) FROM oi_events WHERE tbl = 'docs' GROUP BY key`)
	require.NoError(e.t, err)
	defer rows.Close()
	seen := map[int64]bool{}
	for rows.Next() {
		var key, n, id int64
		require.NoError(e.t, rows.Scan(&key, &n, &id))
		require.True(e.t, live[key], "key %d is deleted but has %d events left", key, n)
		require.EqualValues(e.t, 1, n, "key %d: events left", key)
		require.EqualValues(e.t, id, e.count(`SELECT id FROM oi_latest WHERE tbl = 'docs' AND key = ? AND field = ''`, key), "oi_latest of key %d", key)
		seen[key] = true
	}
	require.NoError(e.t, rows.Err())
	for k := range live {
		require.True(e.t, seen[k], "key %d lost its vector event", k)
	}
	require.EqualValues(e.t, len(live), e.count(`SELECT count(*) FROM oi_latest WHERE tbl = 'docs'`))
}

// Compaction reads only the events applied since the last one: a vector
// event kept by an earlier compaction is found through oi_latest when a
// newer one supersedes it, and removed; a delete removes it too. The
// sidecars rebuilt from the compacted log are the same.
func TestCompactSupersedesAcrossWindows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	ix := e.indexer(withBatch(3))
	live := map[int64]bool{}
	for i := int64(1); i <= 6; i++ {
		e.createDoc(Doc{ID: i, Title: "t", Body: "b"}, vec(int(i)))
		live[i] = true
	}
	e.drain(ix)
	e.requireOneEventPerKey(live)
	for round := range 3 {
		e.updateDoc(1, map[string]any{"title": "u"}, true, vec(10+round))
		e.updateDoc(2, map[string]any{"title": "u"}, false, nil) // text only: the vector event stays
		e.updateDoc(3, nil, true, vec(20+round))
		e.updateDoc(3, nil, true, vec(30+round)) // twice in one window
		e.drain(ix)
		e.requireOneEventPerKey(live)
	}
	e.hardDeleteDoc(4)
	delete(live, 4)
	e.updateDoc(5, nil, true, vec(40))
	e.hardDeleteDoc(5)
	delete(live, 5)
	e.drain(ix)
	e.requireOneEventPerKey(live)
	// Re-created after its delete: a new vector event, kept alone.
	e.createDoc(Doc{ID: 4, Title: "again", Body: "b"}, vec(50))
	live[4] = true
	e.drain(ix)
	e.requireOneEventPerKey(live)
	e.check()
	require.NoError(t, ix.Rebuild(e.ctx))
	e.check()
}

// A log compacted before oi_latest existed (or by an older build) has no
// entries there: compaction fills them from the compacted events first,
// so that their keys' later vectors still supersede them.
func TestCompactFillsLatestOfAnOlderLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, outbox.ModeExternal, outbox.ModeInTable)
	ix := e.indexer(withBatch(2))
	live := map[int64]bool{}
	for i := int64(1); i <= 9; i++ {
		e.createDoc(Doc{ID: i, Title: "t", Body: "b"}, vec(int(i)))
		live[i] = true
	}
	e.drain(ix)
	e.exec(`DELETE FROM oi_latest`)
	e.exec(`DELETE FROM oi_checkpoint WHERE name = ?`, outbox.LatestCheckpoint)
	for i := int64(1); i <= 9; i += 2 {
		e.updateDoc(i, nil, true, vec(int(100+i)))
	}
	e.hardDeleteDoc(2)
	delete(live, 2)
	e.drain(ix)
	e.requireOneEventPerKey(live)
	e.check()
}
