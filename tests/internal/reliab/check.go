package reliab

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Tokens splits s like FTS5's unicode61 tokenizer does for the ASCII text
// Workload writes: lower-cased runs of letters and digits.
func Tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

// LedgerVectors replays the ledger: the vector each touched key was left
// with by the last committed transaction that touched it (nil: none).
func LedgerVectors(ctx context.Context, db *sql.DB) (map[string][]float32, int, error) {
	rows, err := db.QueryContext(ctx, `SELECT vecs FROM wr_ledger ORDER BY seq`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := map[string][]float32{}
	n := 0
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, 0, err
		}
		var m map[string][]float32
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, 0, fmt.Errorf("ledger: %w", err)
		}
		for k, v := range m {
			out[k] = v
		}
		n++
	}
	return out, n, rows.Err()
}

// Summary is what Check found, for the test log.
type Summary struct {
	Ledger   int // committed workload transactions
	Articles int // source rows
	Notes    int
	Memos    int
	Vectors  int // vec0 entries
	Tokens   int // FTS5 token instances
}

// Check asserts that the sidecars of the test models hold exactly what the
// source rows and the committed vectors (the ledger) say, that nothing is
// pending or parked, and that SQLite's and FTS5's integrity checks pass.
// Token instances are compared one by one through fts5vocab, so a document
// indexed twice or a stale token left behind is caught, and vec0 entries
// are compared with their values, deleted flags and metadata.
// Live returns the physical name of the sidecar the registry calls name:
// its live generation, which an online rebuild changes.
func Live(t testing.TB, db *sql.DB, name string) string {
	t.Helper()
	n, err := outbox.LiveTable(context.Background(), db, name)
	require.NoError(t, err)
	return n
}

func Check(t testing.TB, db *sql.DB) Summary {
	t.Helper()
	ctx := context.Background()
	var sum Summary
	Integrity(t, db)

	var pending, dead int64
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM oi_events WHERE id > (SELECT coalesce(max(position), 0) FROM oi_checkpoint WHERE name = 'main')`).Scan(&pending))
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM oi_deadletters`).Scan(&dead))
	require.Zero(t, pending, "events pending after the final drain")
	require.Zero(t, dead, "events parked as dead letters")

	vecs, n, err := LedgerVectors(ctx, db)
	require.NoError(t, err)
	sum.Ledger = n

	// articles: vec0 with deleted flag and cat metadata; external-content FTS.
	type vecRow struct {
		Vec     []float32
		Deleted int64
		Meta    string
	}
	wantVec := map[string]vecRow{}
	text := map[int64][]string{}
	rows, err := db.QueryContext(ctx, `SELECT id, title, body, cat, deleted_at IS NOT NULL FROM articles`)
	require.NoError(t, err)
	for rows.Next() {
		var id, cat int64
		var title, body string
		var del bool
		require.NoError(t, rows.Scan(&id, &title, &body, &cat, &del))
		text[id] = []string{title, body}
		if v := vecs[fmt.Sprintf("articles/%d", id)]; v != nil {
			wantVec[fmt.Sprint(id)] = vecRow{Vec: v, Deleted: flag(del), Meta: fmt.Sprint(cat)}
		}
		sum.Articles++
	}
	require.NoError(t, rows.Err())
	rows.Close()
	gotVec := map[string]vecRow{}
	rows, err = db.QueryContext(ctx, `SELECT rowid, embedding, deleted, cat FROM `+outbox.Quote(Live(t, db, "articles_vec")))
	require.NoError(t, err)
	for rows.Next() {
		var id, del, cat int64
		var b []byte
		require.NoError(t, rows.Scan(&id, &b, &del, &cat))
		v, err := outbox.DecodeVector(b)
		require.NoError(t, err)
		gotVec[fmt.Sprint(id)] = vecRow{Vec: v, Deleted: del, Meta: fmt.Sprint(cat)}
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, wantVec, gotVec, "articles_vec differs from the source rows and the committed vectors")
	sum.Vectors += len(gotVec)
	sum.Tokens += checkTokens(t, db, "articles_fts", []string{"title", "body"}, text)

	// notes: text keys, vec0 with an id column, in-table FTS with a deleted flag.
	wantVec = map[string]vecRow{}
	text = map[int64][]string{}
	wantDel := map[int64]int64{}
	rows, err = db.QueryContext(ctx, `SELECT n.id, m.rid, n.text, n.deleted_at IS NOT NULL FROM notes n LEFT JOIN oi_keymap m ON m.tbl = 'notes' AND m.key = n.id`)
	require.NoError(t, err)
	for rows.Next() {
		var id, txt string
		var rid sql.NullInt64
		var del bool
		require.NoError(t, rows.Scan(&id, &rid, &txt, &del))
		require.True(t, rid.Valid, "note %s has no oi_keymap entry", id)
		text[rid.Int64] = []string{txt}
		wantDel[rid.Int64] = flag(del)
		if v := vecs["notes/"+id]; v != nil {
			wantVec[id] = vecRow{Vec: v, Deleted: flag(del)}
		}
		sum.Notes++
	}
	require.NoError(t, rows.Err())
	rows.Close()
	gotVec = map[string]vecRow{}
	rows, err = db.QueryContext(ctx, `SELECT id, embedding, deleted FROM `+outbox.Quote(Live(t, db, "notes_vec")))
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var del int64
		var b []byte
		require.NoError(t, rows.Scan(&id, &b, &del))
		v, err := outbox.DecodeVector(b)
		require.NoError(t, err)
		gotVec[id] = vecRow{Vec: v, Deleted: del}
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, wantVec, gotVec, "notes_vec differs from the source rows and the committed vectors")
	sum.Vectors += len(gotVec)
	sum.Tokens += checkTokens(t, db, "notes_fts", []string{"text"}, text)
	gotDel := map[int64]int64{}
	rows, err = db.QueryContext(ctx, `SELECT rowid, deleted FROM `+outbox.Quote(Live(t, db, "notes_fts")))
	require.NoError(t, err)
	for rows.Next() {
		var rid, del int64
		require.NoError(t, rows.Scan(&rid, &del))
		gotDel[rid] = del
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, wantDel, gotDel, "notes_fts deleted flags")

	// memos: contentless FTS.
	text = map[int64][]string{}
	rows, err = db.QueryContext(ctx, `SELECT id, text FROM memos`)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		var txt string
		require.NoError(t, rows.Scan(&id, &txt))
		text[id] = []string{txt}
		sum.Memos++
	}
	require.NoError(t, rows.Err())
	rows.Close()
	sum.Tokens += checkTokens(t, db, "memos_fts", []string{"text"}, text)
	return sum
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Integrity runs PRAGMA integrity_check and FTS5's integrity-check (the form
// with a rank argument, which also compares an external-content index with
// its content table) on every FTS5 sidecar of the test models.
//
// PRAGMA integrity_check runs on a connection opened for it: in SQLite 3.47
// and still in 3.54.1, its FTS5 part uses the index structure the connection
// cached when it last used the table, without checking whether another
// connection has written the table since, so on a pooled connection it
// reports "malformed inverted index" for a sound index that the indexer
// wrote on another connection.
func Integrity(t testing.TB, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	var path string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path))
	own, err := sql.Open(engine.DriverName, engine.DSN(path))
	require.NoError(t, err)
	defer own.Close()
	var res string
	require.NoError(t, own.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res))
	require.Equal(t, "ok", res, "PRAGMA integrity_check")
	for _, f := range []string{"articles_fts", "notes_fts", "memos_fts"} {
		_, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %[1]s(%[1]s, rank) VALUES('integrity-check', 1)`, outbox.Quote(Live(t, db, f))))
		require.NoError(t, err, "FTS5 integrity-check of %s", f)
	}
}

// checkTokens compares every (document, column, term, offset) instance of
// the FTS5 index with the tokens of the reference text, and the number of
// indexed documents with the number of reference rows. It returns the
// number of instances.
func checkTokens(t testing.TB, db *sql.DB, fts string, cols []string, text map[int64][]string) int {
	t.Helper()
	ctx := context.Background()
	fts = Live(t, db, fts)
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, fmt.Sprintf(`CREATE VIRTUAL TABLE IF NOT EXISTS temp.%[1]s_vocab USING fts5vocab(main, %[1]s, instance)`, fts))
	require.NoError(t, err)
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT doc, col, term, offset FROM temp.%s_vocab`, fts))
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var doc, off int64
		var col, term string
		require.NoError(t, rows.Scan(&doc, &col, &term, &off))
		got = append(got, fmt.Sprintf("%d/%s/%s/%d", doc, col, term, off))
	}
	require.NoError(t, rows.Err())
	rows.Close()
	var want []string
	for id, vals := range text {
		for ci, v := range vals {
			for off, tok := range Tokens(v) {
				want = append(want, fmt.Sprintf("%d/%s/%s/%d", id, cols[ci], tok, off))
			}
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(want, got) {
		require.Equal(t, want, got, "%s: token instances differ from the source rows", fts)
	}
	var docs int
	require.NoError(t, conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %s_docsize`, fts)).Scan(&docs))
	require.Equal(t, len(text), docs, "%s: indexed documents", fts)
	return len(got)
}
