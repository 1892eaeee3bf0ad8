package outbox_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

// triggerDB is a database with a registered articles table (external FTS,
// soft delete, a vector) and a comments table whose rows cascade from
// articles.
func triggerDB(t *testing.T) (*sql.DB, *outbox.Spec) {
	t.Helper()
	ctx := context.Background()
	db := sqlDB(t)
	for _, q := range []string{
		`PRAGMA foreign_keys = ON`,
		`CREATE TABLE articles (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, body TEXT, views INTEGER, slug TEXT UNIQUE, deleted_at DATETIME)`,
		`CREATE TABLE comments (id INTEGER PRIMARY KEY, article_id INTEGER REFERENCES articles(id) ON DELETE CASCADE ON UPDATE CASCADE, text TEXT)`,
	} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	s := validSpec()
	require.NoError(t, outbox.SaveSpec(ctx, db, s))
	c := &outbox.Spec{Version: outbox.SpecVersion, Source: "comments", Key: "id", KeyType: outbox.KeyInteger,
		FTS: &outbox.FTSSpec{Table: "comments_fts", Mode: outbox.ModeInTable, Tokenize: "unicode61", Columns: []outbox.FTSCol{{Name: "text", Source: "text"}}}}
	require.NoError(t, outbox.SaveSpec(ctx, db, c))
	return db, s
}

type ev struct {
	Tbl string
	Key any
	Op  outbox.Op
	Vec any
	Old any
}

// eventsAfter returns the events after id, without ids and times.
func eventsAfter(t *testing.T, db *sql.DB, id int64) []ev {
	t.Helper()
	rows, err := db.Query(`SELECT tbl, key, op, vec, old FROM oi_events WHERE id > ? ORDER BY id`, id)
	require.NoError(t, err)
	defer rows.Close()
	var out []ev
	for rows.Next() {
		var e ev
		require.NoError(t, rows.Scan(&e.Tbl, &e.Key, &e.Op, &e.Vec, &e.Old))
		if b, ok := e.Vec.([]byte); ok {
			e.Vec = string(b)
		}
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

func head(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var h int64
	require.NoError(t, db.QueryRow(`SELECT coalesce(max(id), 0) FROM oi_events`).Scan(&h))
	return h
}

// Raw SQL, whoever runs it, is captured by the triggers: one event per
// changed row, with the before-image of external-content FTS.
func TestTriggersCaptureRawSQL(t *testing.T) {
	t.Parallel()
	db, _ := triggerDB(t)
	step := func(q string, want ...ev) {
		t.Helper()
		h := head(t, db)
		_, err := db.Exec(q)
		require.NoError(t, err, q)
		require.Equal(t, want, eventsAfter(t, db, h), q)
	}
	step(`INSERT INTO articles (title, body, views, slug) VALUES ('a', 'b', 1, 's1'), ('c', 'd', 2, 's2')`,
		ev{"articles", int64(1), outbox.OpInsert, "", nil}, ev{"articles", int64(2), outbox.OpInsert, "", nil})
	step(`UPDATE articles SET views = views + 1`) // not watched: no event
	step(`UPDATE articles SET title = 'A' WHERE id = 1`,
		ev{"articles", int64(1), outbox.OpUpdate, nil, `["a","b"]`})
	step(`UPDATE articles SET deleted_at = '2026-01-01' WHERE id = 2`,
		ev{"articles", int64(2), outbox.OpSoftDelete, nil, `["c","d"]`})
	step(`UPDATE articles SET deleted_at = NULL WHERE id = 2`,
		ev{"articles", int64(2), outbox.OpRestore, nil, `["c","d"]`})
	step(`UPDATE articles SET id = id WHERE id = 1`, // the key named in SET: every matched row reports
		ev{"articles", int64(1), outbox.OpUpdate, nil, `["A","b"]`})
	step(`UPDATE articles SET id = 10 WHERE id = 1`,
		ev{"articles", int64(1), outbox.OpDelete, nil, `["A","b"]`}, ev{"articles", int64(10), outbox.OpInsert, "", nil})
	// REPLACE on a unique column deletes the other row: recursive_triggers
	// (in the project's DSN) makes the delete visible.
	step(`REPLACE INTO articles (id, title, body, slug) VALUES (20, 'e', 'f', 's2')`,
		ev{"articles", int64(2), outbox.OpDelete, nil, `["c","d"]`}, ev{"articles", int64(20), outbox.OpInsert, "", nil})
	step(`INSERT INTO articles (id, title, body, slug) VALUES (20, 'g', 'h', 'x') ON CONFLICT (id) DO UPDATE SET body = excluded.body`,
		ev{"articles", int64(20), outbox.OpUpdate, nil, `["e","f"]`})
	step(`INSERT INTO articles (id, title, body, slug) VALUES (20, 'g', 'h', 'x') ON CONFLICT DO NOTHING`)
	step(`INSERT INTO comments (id, article_id, text) VALUES (1, 10, 'x'), (2, 20, 'y')`,
		ev{"comments", int64(1), outbox.OpInsert, nil, nil}, ev{"comments", int64(2), outbox.OpInsert, nil, nil})
	// Foreign-key actions fire the child's triggers (before the parent's
	// AFTER trigger).
	step(`DELETE FROM articles WHERE id = 10`,
		ev{"comments", int64(1), outbox.OpDelete, nil, nil}, ev{"articles", int64(10), outbox.OpDelete, nil, `["A","b"]`})
}

func TestTriggerDDLWatchesIndexedColumns(t *testing.T) {
	t.Parallel()
	s := validSpec()
	s.Vec.Metadata = []outbox.MetaCol{{Name: "views", Type: "integer"}, {Name: "title", Type: "text"}}
	require.Equal(t, []string{"id", "title", "body", "deleted_at", "views"}, s.WatchedColumns())
	ddl := outbox.TriggerDDL(s)
	require.Len(t, ddl, 4)
	require.Contains(t, ddl[1], `AFTER UPDATE OF "id", "title", "body", "deleted_at", "views" ON "articles"`)

	// A derived vector's from= columns are watched too.
	s.Vec.From = []string{"summary", "title"}
	require.NoError(t, s.Validate())
	require.Equal(t, []string{"id", "title", "body", "deleted_at", "views", "summary"}, s.WatchedColumns())
	s.Vec.From = []string{"summary", "Summary"}
	require.ErrorIs(t, s.Validate(), outbox.ErrBadSpec)
	s.Vec.From = []string{"x y"}
	require.ErrorContains(t, s.Validate(), `from column "x y"`)
}

func TestEmbedText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Title\n\nBody", outbox.EmbedText([]any{"Title", nil, "  ", []byte("Body")}))
	require.Equal(t, "", outbox.EmbedText([]any{nil, " \t"}))
	require.Equal(t, "42", outbox.EmbedText([]any{int64(42)}))
	require.NotEqual(t, outbox.EmbedHash("a", "text"), outbox.EmbedHash("b", "text"), "the embedder is part of the hash")
	require.Equal(t, outbox.EmbedHash("a", "text"), outbox.EmbedHash("a", "text"))
}

// Backfill queues every existing row in bounded steps, in key order, with
// the current text as before-image, and finishes by leaving the queue.
func TestBackfillSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, s := triggerDB(t)
	for i := 0; i < 5; i++ {
		_, err := db.Exec(`INSERT INTO articles (title, body) VALUES (?, 'b')`, string(rune('a'+i)))
		require.NoError(t, err)
	}
	require.NoError(t, outbox.QueueBackfill(ctx, db, "articles"))
	q, err := outbox.Backfills(ctx, db)
	require.NoError(t, err)
	require.Equal(t, []string{"articles"}, q)
	h := head(t, db)
	var total int64
	steps := 0
	for {
		n, done, err := outbox.BackfillStep(ctx, db, s, 2)
		require.NoError(t, err)
		if done {
			break
		}
		require.LessOrEqual(t, n, int64(2))
		total += n
		steps++
	}
	require.EqualValues(t, 5, total)
	require.Equal(t, 3, steps)
	evs := eventsAfter(t, db, h)
	require.Len(t, evs, 5)
	for i, e := range evs {
		require.Equal(t, ev{"articles", int64(i + 1), outbox.OpUpdate, nil, `["` + string(rune('a'+i)) + `","b"]`}, e)
	}
	q, err = outbox.Backfills(ctx, db)
	require.NoError(t, err)
	require.Empty(t, q)
	_, done, err := outbox.BackfillStep(ctx, db, s, 2)
	require.NoError(t, err)
	require.True(t, done, "a table that is not queued is done")
}
