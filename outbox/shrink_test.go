package outbox_test

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// ShrinkTable empties the shadow tables of a virtual table in bounded
// steps and touches no other table, not even one whose name starts alike
// (the next generation's).
func TestShrinkTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	execAll(t, db,
		`CREATE VIRTUAL TABLE docs_fts USING fts5(body)`,
		`CREATE VIRTUAL TABLE docs_fts__g1 USING fts5(body)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO docs_fts (body) SELECT 'word' || i || ' common text' FROM n`,
		`INSERT INTO docs_fts__g1 (body) SELECT body FROM docs_fts`,
	)
	count := func(table string) int { return rowCount(t, db, table) }
	require.Positive(t, count("docs_fts_data"))
	// At worst (under -race on a loaded machine a single DELETE can take
	// the whole budget) a step deletes one row; a few more steps find a
	// shadow table just emptied, or nothing left at the end.
	total := count("docs_fts_data") + count("docs_fts_content") + count("docs_fts_docsize") + 8
	steps := 0
	for {
		r, err := outbox.ShrinkTable(ctx, db, "docs_fts", time.Millisecond)
		require.NoError(t, err)
		steps++
		if !r.Left {
			break
		}
		require.LessOrEqual(t, steps, total)
	}
	require.Greater(t, steps, 1, "bounded steps")
	require.Zero(t, count("docs_fts_data"))
	require.Zero(t, count("docs_fts_docsize"))
	require.NoError(t, outbox.DropTables(ctx, db, "docs_fts"))
	require.Equal(t, 3000, count("docs_fts__g1_docsize"), "the other generation is untouched")
	_, err := db.Exec(`INSERT INTO docs_fts__g1(docs_fts__g1, rank) VALUES ('integrity-check', 1)`)
	require.NoError(t, err)

	// With budget to spare a call still stops at the next shadow table
	// with rows: what its rows cost is not known yet.
	r, err := outbox.ShrinkTable(ctx, db, "docs_fts__g1", time.Minute)
	require.NoError(t, err)
	require.True(t, r.Left)
	left := r.Left
	require.Zero(t, count("docs_fts__g1_data"))
	require.Equal(t, 3000, count("docs_fts__g1_content"), "one shadow table per call")
	calls := 1
	for left {
		r, err = outbox.ShrinkTable(ctx, db, "docs_fts__g1", time.Minute)
		require.NoError(t, err)
		left = r.Left
		calls++
	}
	require.Zero(t, count("docs_fts__g1_content"))
	require.Zero(t, count("docs_fts__g1_docsize"))
	require.Equal(t, 4, calls, "data, content, docsize, then nothing left")
}

// PrefetchShrink reads the first rows of the first shadow table with rows,
// up to the bytes asked for; ShrinkTable given that bound deletes those
// rows and no other, and a vec0 table is emptied bound by bound.
func TestPrefetchShrink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	execAll(t, db,
		// Chunks of 16 vectors of 256 floats: 16 KiB rows, on overflow pages.
		`CREATE VIRTUAL TABLE docs_vec USING vec0(embedding float[256], chunk_size=16)`,
		`CREATE VIRTUAL TABLE docs_vec__g1 USING vec0(embedding float[256], chunk_size=16)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO docs_vec (rowid, embedding) SELECT i, (SELECT json_group_array(i * 0.5 + j) FROM (SELECT value AS j FROM json_each('[`+seq(256)+`]'))) FROM n`,
		`INSERT INTO docs_vec__g1 (rowid, embedding) SELECT rowid, embedding FROM docs_vec`,
	)
	count := func(table string) int { return rowCount(t, db, table) }
	chunks := count("docs_vec_vector_chunks00")
	require.GreaterOrEqual(t, chunks, 13)

	shadows := []string{"docs_vec_info", "docs_vec_chunks", "docs_vec_rowids", "docs_vec_vector_chunks00"}
	total := func() (n int) {
		for _, s := range shadows {
			n += count(s)
		}
		return n
	}

	// One row at least, however small the budget; a read deletes nothing.
	rows := total()
	b, err := outbox.PrefetchShrink(ctx, db, "docs_vec", outbox.PrefetchBudget{Rows: 1000, Bytes: 1})
	require.NoError(t, err)
	require.Equal(t, 1, b.Rows)
	require.Positive(t, b.Bytes)
	require.Contains(t, shadows, b.Table)
	require.Equal(t, rows, total())
	// And one row when the time is up after it.
	b, err = outbox.PrefetchShrink(ctx, db, "docs_vec", outbox.PrefetchBudget{Rows: 1000, Bytes: 1 << 40, Time: time.Nanosecond})
	require.NoError(t, err)
	require.Equal(t, 1, b.Rows)

	sawChunks := false
	for calls := 0; ; calls++ {
		require.Less(t, calls, 1000)
		b, err := outbox.PrefetchShrink(ctx, db, "docs_vec", outbox.PrefetchBudget{Rows: 150, Bytes: 3 * 16 * 256 * 4}) // three chunks, or 150 small rows
		require.NoError(t, err)
		if b.Rows == 0 {
			require.Equal(t, outbox.ShrinkBound{}, b)
			r, err := outbox.ShrinkTable(ctx, db, "docs_vec", time.Minute, outbox.ShrinkUpTo(b))
			require.NoError(t, err)
			require.Equal(t, outbox.Shrunk{}, r, "nothing read, nothing left")
			break
		}
		require.LessOrEqual(t, b.Rows, 150)
		before := count(b.Table)
		var upTo, after int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+outbox.Quote(b.Table)+` WHERE rowid <= ?`, b.Rowid).Scan(&upTo))
		require.Equal(t, b.Rows, upTo, "the bound covers the rows read")
		if b.Table == "docs_vec_vector_chunks00" {
			sawChunks = true
			require.Equal(t, min(3, before), b.Rows, "about the bytes asked for: %+v", b)
		}
		r, err := outbox.ShrinkTable(ctx, db, "docs_vec", time.Minute, outbox.ShrinkUpTo(b))
		require.NoError(t, err)
		require.True(t, r.Left, "rows past the bound are for the next call")
		require.Equal(t, int64(b.Rows), r.Rows)
		after = count(b.Table)
		require.Equal(t, before-b.Rows, after, "the rows read, and no other: %+v", b)
	}
	require.True(t, sawChunks)
	require.Zero(t, total())
	require.Equal(t, chunks, count("docs_vec__g1_vector_chunks00"), "the other generation is untouched")
	require.NoError(t, outbox.DropTables(ctx, db, "docs_vec"))
	var hits int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM docs_vec__g1 WHERE embedding MATCH (SELECT embedding FROM docs_vec__g1 WHERE rowid = 7) AND k = 3`).Scan(&hits))
	require.Equal(t, 3, hits)
}

// execAll runs each statement of qs on db.
func execAll(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
}

// rowCount returns the number of rows of table.
func rowCount(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+outbox.Quote(table)).Scan(&n))
	return n
}

// seq returns "0,1,…,n-1".
func seq(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return strings.Join(s, ",")
}
