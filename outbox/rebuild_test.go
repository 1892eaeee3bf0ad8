package outbox_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

func TestGenerations(t *testing.T) {
	t.Parallel()
	require.Equal(t, "articles_vec", outbox.GenName("articles_vec", 0))
	require.Equal(t, "articles_vec__g3", outbox.GenName("articles_vec", 3))
	s := validSpec()
	s.MoreVecs = []outbox.VecSpec{{Table: "articles_body_vec", Column: "body_emb", Dim: 2, Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary}}
	s.FTS.Gen = 2
	n := outbox.NextGeneration(s)
	require.Equal(t, 3, n.Vec.Gen, "one above the highest generation of any sidecar")
	require.Equal(t, 3, n.MoreVecs[0].Gen)
	require.Equal(t, "articles_fts__g3", n.FTS.Live())
	require.Zero(t, s.Vec.Gen, "the spec itself is not changed")
	require.Equal(t, 2, s.FTS.Gen)
	require.True(t, s.Equal(n), "generations are not part of what a spec describes")
	require.NoError(t, n.Validate())
	n.Vec.Gen = -1
	require.ErrorIs(t, n.Validate(), outbox.ErrBadSpec)
}

// DiscardRebuild drops what a rebuild was building (not the live tables),
// LiveTable resolves registry names to live generations, SwapSpec changes
// them.
func TestRebuildBookkeeping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	require.NoError(t, outbox.EnsureSchema(ctx, db))
	_, err := db.Exec(`CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT, deleted_at DATETIME)`)
	require.NoError(t, err)
	s := validSpec()
	require.NoError(t, outbox.SaveSpec(ctx, db, s))
	next := outbox.NextGeneration(s)
	for _, q := range []string{
		`CREATE TABLE articles_vec (x)`, `CREATE TABLE articles_fts (x)`,
		`CREATE TABLE articles_vec__g1 (x)`, `CREATE TABLE articles_fts__g1 (x)`,
		`CREATE TABLE oi_rebuild_vec_articles (field, key, id)`,
	} {
		_, err := db.Exec(q)
		require.NoError(t, err)
	}
	r := &outbox.RebuildState{Table: "articles", Spec: next, Phase: outbox.PhaseCopy, After: int64(7), Done: 7, Total: 10, Driver: "me"}
	require.NoError(t, outbox.SaveRebuild(ctx, db, r))
	got, ok, err := outbox.LoadRebuild(ctx, db, "articles")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(7), got.After)
	require.Equal(t, "me", got.Driver)
	require.Equal(t, []string{"articles_vec__g1", "articles_fts__g1", "oi_rebuild_vec_articles"}, got.BuildingTables())
	// After the swap the key cursor (requeue) and the swap time (requeue,
	// drop) both survive a save.
	swapped := time.Unix(0, time.Now().UnixNano())
	for _, ph := range []string{outbox.PhaseRequeue, outbox.PhaseDrop} {
		var after any
		if ph == outbox.PhaseRequeue {
			after = int64(42)
		}
		q := &outbox.RebuildState{Table: "articles", Spec: next, Phase: ph, After: after, Done: 3, Total: 10, SwappedAt: swapped, Driver: "me"}
		require.NoError(t, outbox.SaveRebuild(ctx, db, q))
		got, ok, err := outbox.LoadRebuild(ctx, db, "articles")
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, got.SwappedAt.Equal(swapped), "%s: %v", ph, got.SwappedAt)
		require.Equal(t, after, got.After, ph)
	}
	require.NoError(t, outbox.SaveRebuild(ctx, db, r))
	due, err := outbox.RebuildDue(ctx, db, "other", 1e9)
	require.NoError(t, err)
	require.False(t, due, "another driver stepped it just now")
	due, err = outbox.RebuildDue(ctx, db, "me", 1e9)
	require.NoError(t, err)
	require.True(t, due)

	live, err := outbox.LiveTable(ctx, db, "articles_fts")
	require.NoError(t, err)
	require.Equal(t, "articles_fts", live)
	require.NoError(t, outbox.DiscardRebuild(ctx, db, "articles"))
	var names []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'articles%' ORDER BY name`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Close())
	require.Equal(t, []string{"articles", "articles_fts", "articles_vec"}, names, "only the live tables remain")
	pending, err := outbox.RebuildPending(ctx, db)
	require.NoError(t, err)
	require.False(t, pending)

	require.NoError(t, outbox.SwapSpec(ctx, db, next))
	live, err = outbox.LiveTable(ctx, db, "articles_vec")
	require.NoError(t, err)
	require.Equal(t, "articles_vec__g1", live)
	stored, err := outbox.LoadSpec(ctx, db, "articles")
	require.NoError(t, err)
	require.Equal(t, 1, stored.FTS.Gen)
	other := *next
	other.Source = "nope"
	require.ErrorIs(t, outbox.SwapSpec(ctx, db, &other), outbox.ErrNotRegistered)
}

// An online rebuild builds the next generation of a sidecar under a new
// name; the registry's spec names the live one.
func ExampleGenName() {
	fmt.Println(outbox.GenName("articles_vec", 0))
	fmt.Println(outbox.GenName("articles_vec", 2))
	v := outbox.VecSpec{Table: "articles_vec", Gen: 1}
	fmt.Println(v.Live())
	// Output:
	// articles_vec
	// articles_vec__g2
	// articles_vec__g1
}

// A rebuild row that cannot be read (a spec this version cannot parse)
// still goes, with the vector-state table, the new generation's key floors
// and the side files that can be named without it.
func TestDiscardUnreadableRebuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	require.NoError(t, outbox.EnsureSchema(ctx, db))
	now := time.Now().UnixNano()
	_, err := db.Exec(`INSERT INTO oi_rebuild (tbl, spec, phase, scanned, done, total, started_at, updated_at) VALUES ('articles', '{not json', 'side', 0, 0, 0, ?, ?)`, now, now)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE ` + outbox.VecStatesTable("articles") + ` (field, key, id)`)
	require.NoError(t, err)
	_, _, err = outbox.LoadRebuild(ctx, db, "articles")
	require.Error(t, err, "the row is unreadable")
	main, err := outbox.MainFile(ctx, db)
	require.NoError(t, err)
	side := outbox.SideFile(main, "articles", time.Unix(0, now))
	require.NoError(t, os.WriteFile(side, []byte("x"), 0o600))

	require.NoError(t, outbox.DiscardRebuild(ctx, db, "articles"))
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM oi_rebuild`).Scan(&n))
	require.Zero(t, n)
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = ?`, outbox.VecStatesTable("articles")).Scan(&n))
	require.Zero(t, n)
	require.NoFileExists(t, side)
	pending, err := outbox.RebuildPending(ctx, db)
	require.NoError(t, err)
	require.False(t, pending)
}
