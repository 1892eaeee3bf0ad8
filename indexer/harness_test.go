package indexer_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// Doc has an integer key, a vector with metadata and two FTS columns.
type Doc struct {
	ID        int64 `gorm:"primaryKey"`
	Title     string
	Body      string
	Score     float64
	Cat       int64
	DeletedAt gorm.DeletedAt
}

// Note has a text key.
type Note struct {
	ID        string `gorm:"primaryKey"`
	Text      string
	DeletedAt gorm.DeletedAt
}

const dim = 4

func docSpec(mode string) *outbox.Spec {
	return &outbox.Spec{
		Version: outbox.SpecVersion, Source: "docs", Key: "id", KeyType: outbox.KeyInteger, SoftDelete: "deleted_at",
		Vec: &outbox.VecSpec{Table: "docs_vec", Column: "embedding", Dim: dim, Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary,
			Metadata: []outbox.MetaCol{{Name: "score", Type: "float"}, {Name: "cat", Type: "integer"}}},
		FTS: &outbox.FTSSpec{Table: "docs_fts", Mode: mode, Tokenize: "unicode61",
			Columns: []outbox.FTSCol{{Name: "title", Source: "title"}, {Name: "body", Source: "body"}}},
	}
}

func noteSpec(mode string) *outbox.Spec {
	return &outbox.Spec{
		Version: outbox.SpecVersion, Source: "notes", Key: "id", KeyType: outbox.KeyText, SoftDelete: "deleted_at",
		Vec: &outbox.VecSpec{Table: "notes_vec", Column: "embedding", Dim: dim, Metric: outbox.MetricCosine, Encoding: outbox.EncodingJSON},
		FTS: &outbox.FTSSpec{Table: "notes_fts", Mode: mode, Tokenize: "unicode61",
			Columns: []outbox.FTSCol{{Name: "text", Source: "text"}}},
	}
}

// env is a database with docs and notes registered, written without the
// gorm plugin and without capture (the triggers are replaced by inert ones
// of the same names, so the indexer does not put them back): rows with
// plain gorm, events with outbox.Append, as the capture side would write
// them, so that a test controls every event.
type env struct {
	t     testing.TB
	ctx   context.Context
	path  string
	db    *gorm.DB
	sql   *sql.DB
	docs  *outbox.Spec
	notes *outbox.Spec
	vecs  map[string][]float32 // reference vectors by "tbl/key"
}

func newEnv(t testing.TB, docMode, noteMode string) *env {
	t.Helper()
	path := testdb.Path(t)
	db := testdb.Open(t, path)
	s, err := db.DB()
	require.NoError(t, err)
	e := &env{t: t, ctx: context.Background(), path: path, db: db, sql: s, docs: docSpec(docMode), notes: noteSpec(noteMode), vecs: map[string][]float32{}}
	require.NoError(t, db.AutoMigrate(&Doc{}, &Note{}))
	require.NoError(t, outbox.EnsureSchema(e.ctx, s))
	for _, sp := range []*outbox.Spec{e.docs, e.notes} {
		require.NoError(t, outbox.SaveSpec(e.ctx, s, sp))
		inertTriggers(t, s, sp.Source)
		require.NoError(t, vecsink.Create(e.ctx, s, sp))
		require.NoError(t, ftssink.Create(e.ctx, s, sp))
	}
	return e
}

func fastBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Millisecond
	b.MaxInterval = 5 * time.Millisecond
	b.MaxElapsedTime = 5 * time.Second
	return b
}

func (e *env) indexer(opts ...indexer.Option) *indexer.Indexer {
	e.t.Helper()
	opts = append([]indexer.Option{indexer.WithBackoff(fastBackoff), indexer.WithPollInterval(5 * time.Millisecond)}, opts...)
	ix, err := indexer.New(e.db, opts...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { ix.Close() })
	return ix
}

func vec(seed int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(seed*10+i) / 8
	}
	return v
}

func enc(t testing.TB, v []float32, encoding string) []byte {
	b, err := outbox.EncodeVector(v, dim, encoding)
	require.NoError(t, err)
	return b
}

func (e *env) conn(tx *gorm.DB) outbox.DB { return tx.Statement.ConnPool.(outbox.DB) }

func (e *env) appendEv(tx *gorm.DB, evs ...outbox.Event) {
	e.t.Helper()
	require.NoError(e.t, outbox.Append(e.ctx, e.conn(tx), evs))
}

// docOld is the before-image of a doc for external-content FTS.
func (e *env) docOld(tx *gorm.DB, id int64) []any {
	if e.docs.FTS.Mode != outbox.ModeExternal {
		return nil
	}
	var d Doc
	if err := tx.Unscoped().First(&d, id).Error; err != nil {
		return nil
	}
	return []any{d.Title, d.Body}
}

// setVec records v as the reference vector and returns its event payload.
func (e *env) setVec(tbl string, key any, v []float32, encoding string) []byte {
	k := fmt.Sprintf("%s/%v", tbl, key)
	if v == nil {
		delete(e.vecs, k)
		return []byte{}
	}
	e.vecs[k] = v
	return enc(e.t, v, encoding)
}

func (e *env) createDoc(d Doc, v []float32) {
	e.t.Helper()
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		require.NoError(e.t, tx.Create(&d).Error)
		e.appendEv(tx, outbox.Event{Table: "docs", Key: d.ID, Op: outbox.OpInsert, Vec: e.setVec("docs", d.ID, v, outbox.EncodingBinary)})
		return nil
	}))
}

// updateDoc changes columns (nil map: none) and, if setV, the vector.
func (e *env) updateDoc(id int64, cols map[string]any, setV bool, v []float32) {
	e.t.Helper()
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		old := e.docOld(tx, id)
		if len(cols) > 0 {
			require.NoError(e.t, tx.Unscoped().Model(&Doc{ID: id}).Updates(cols).Error)
		}
		var pv []byte
		if setV {
			pv = e.setVec("docs", id, v, outbox.EncodingBinary)
		}
		e.appendEv(tx, outbox.Event{Table: "docs", Key: id, Op: outbox.OpUpdate, Vec: pv, Old: old})
		return nil
	}))
}

func (e *env) softDeleteDoc(id int64) {
	e.t.Helper()
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		old := e.docOld(tx, id)
		require.NoError(e.t, tx.Delete(&Doc{}, id).Error)
		e.appendEv(tx, outbox.Event{Table: "docs", Key: id, Op: outbox.OpSoftDelete, Old: old})
		return nil
	}))
}

func (e *env) restoreDoc(id int64) {
	e.t.Helper()
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		old := e.docOld(tx, id)
		require.NoError(e.t, tx.Unscoped().Model(&Doc{ID: id}).Update("deleted_at", nil).Error)
		e.appendEv(tx, outbox.Event{Table: "docs", Key: id, Op: outbox.OpRestore, Old: old})
		return nil
	}))
}

func (e *env) hardDeleteDoc(id int64) {
	e.t.Helper()
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		old := e.docOld(tx, id)
		require.NoError(e.t, tx.Unscoped().Delete(&Doc{}, id).Error)
		e.appendEv(tx, outbox.Event{Table: "docs", Key: id, Op: outbox.OpDelete, Old: old})
		e.setVec("docs", id, nil, "")
		return nil
	}))
}

func (e *env) createNote(n Note, v []float32) {
	e.t.Helper()
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		require.NoError(e.t, tx.Create(&n).Error)
		e.appendEv(tx, outbox.Event{Table: "notes", Key: n.ID, Op: outbox.OpInsert, Vec: e.setVec("notes", n.ID, v, outbox.EncodingJSON)})
		return nil
	}))
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	_, err := e.sql.ExecContext(e.ctx, q, args...)
	require.NoError(e.t, err, q)
}

func (e *env) count(q string, args ...any) int64 {
	e.t.Helper()
	var n int64
	require.NoError(e.t, e.sql.QueryRowContext(e.ctx, q, args...).Scan(&n), q)
	return n
}

// vecRow is what vec0 holds for a key.
type vecRow struct {
	vec     []float32
	deleted int64
	meta    string
}

// live returns the registry's spec of sp's table: its sidecars' live
// generations (an online rebuild swaps them).
func (e *env) live(sp *outbox.Spec) *outbox.Spec {
	e.t.Helper()
	l, err := outbox.LoadSpec(e.ctx, e.sql, sp.Source)
	require.NoError(e.t, err)
	return l
}

func (e *env) readVec(sp *outbox.Spec) map[string]vecRow {
	e.t.Helper()
	sp = e.live(sp)
	key := "rowid"
	if sp.KeyType == outbox.KeyText {
		key = "id"
	}
	meta := "''"
	if sp.Source == "docs" {
		meta = "printf('%g/%d', score, cat)"
	}
	rows, err := e.sql.QueryContext(e.ctx, fmt.Sprintf("SELECT %s, %s, deleted, %s FROM %s", key, sp.Vec.Column, meta, outbox.Quote(sp.Vec.Live())))
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[string]vecRow{}
	for rows.Next() {
		var k any
		var b []byte
		var r vecRow
		require.NoError(e.t, rows.Scan(&k, &b, &r.deleted, &r.meta))
		v, err := outbox.DecodeVector(b)
		require.NoError(e.t, err)
		r.vec = v
		out[fmt.Sprint(k)] = r
	}
	require.NoError(e.t, rows.Err())
	return out
}

// check asserts that the sidecars equal the reference computed from the
// source rows and the vectors written.
func (e *env) check() {
	e.t.Helper()
	// docs: vec0
	var docs []Doc
	require.NoError(e.t, e.db.Unscoped().Order("id").Find(&docs).Error)
	want := map[string]vecRow{}
	for _, d := range docs {
		if v, ok := e.vecs[fmt.Sprintf("docs/%d", d.ID)]; ok {
			del := int64(0)
			if d.DeletedAt.Valid {
				del = 1
			}
			want[fmt.Sprint(d.ID)] = vecRow{vec: v, deleted: del, meta: fmt.Sprintf("%g/%d", d.Score, d.Cat)}
		}
	}
	require.Equal(e.t, want, e.readVec(e.docs), "docs_vec")
	var notes []Note
	require.NoError(e.t, e.db.Unscoped().Order("id").Find(&notes).Error)
	want = map[string]vecRow{}
	for _, n := range notes {
		if v, ok := e.vecs["notes/"+n.ID]; ok {
			del := int64(0)
			if n.DeletedAt.Valid {
				del = 1
			}
			want[n.ID] = vecRow{vec: v, deleted: del, meta: ""}
		}
	}
	require.Equal(e.t, want, e.readVec(e.notes), "notes_vec")
	// FTS: integrity and exact tokens.
	for _, sp := range []*outbox.Spec{e.docs, e.notes} {
		e.exec(fmt.Sprintf("INSERT INTO %[1]s(%[1]s, rank) VALUES('integrity-check', 1)", e.live(sp).FTS.Live()))
	}
	docText := map[int64][]string{}
	docDel := map[int64]bool{}
	for _, d := range docs {
		docText[d.ID] = []string{d.Title, d.Body}
		docDel[d.ID] = d.DeletedAt.Valid
	}
	rid := map[int64]int64{}
	for _, d := range docs {
		rid[d.ID] = d.ID
	}
	e.checkTokens(e.docs, docText, docDel, rid)
	noteText := map[int64][]string{}
	noteDel := map[int64]bool{}
	rows, err := e.sql.QueryContext(e.ctx, `SELECT m.rid, n.text, n.deleted_at IS NOT NULL FROM notes n JOIN oi_keymap m ON m.tbl = 'notes' AND m.key = n.id`)
	require.NoError(e.t, err)
	for rows.Next() {
		var r int64
		var txt string
		var del bool
		require.NoError(e.t, rows.Scan(&r, &txt, &del))
		noteText[r] = []string{txt}
		noteDel[r] = del
	}
	require.NoError(e.t, rows.Err())
	rows.Close()
	require.Len(e.t, noteText, len(notes), "every note has a key map entry")
	e.checkTokens(e.notes, noteText, noteDel, nil)
}

func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

// checkTokens compares the FTS index with a brute-force reference: the
// exact (rowid, column, term, offset) instances and MATCH results for every
// reference term, and the deleted flags.
func (e *env) checkTokens(sp *outbox.Spec, text map[int64][]string, deleted map[int64]bool, _ map[int64]int64) {
	e.t.Helper()
	f := e.live(sp).FTS.Live()
	// A temp table exists on one connection only: create and read it on
	// the same one, not on whichever the pool hands out (and every query
	// here goes through it: with SetMaxOpenConns(1) the pool has no other).
	conn, err := e.sql.Conn(e.ctx)
	require.NoError(e.t, err)
	defer conn.Close()
	_, err = conn.ExecContext(e.ctx, fmt.Sprintf("DROP TABLE IF EXISTS temp.%s_v", f))
	require.NoError(e.t, err)
	_, err = conn.ExecContext(e.ctx, fmt.Sprintf("CREATE VIRTUAL TABLE temp.%[1]s_v USING fts5vocab(main, %[1]s, instance)", f))
	require.NoError(e.t, err)
	rows, err := conn.QueryContext(e.ctx, fmt.Sprintf("SELECT doc, col, term, offset FROM temp.%s_v", f))
	require.NoError(e.t, err)
	var got []string
	for rows.Next() {
		var doc, off int64
		var col, term string
		require.NoError(e.t, rows.Scan(&doc, &col, &term, &off))
		got = append(got, fmt.Sprintf("%d/%s/%s/%d", doc, col, term, off))
	}
	require.NoError(e.t, rows.Err())
	rows.Close()
	var want []string
	terms := map[string]map[int64]bool{}
	for id, vals := range text {
		for ci, v := range vals {
			for off, tok := range tokens(v) {
				want = append(want, fmt.Sprintf("%d/%s/%s/%d", id, sp.FTS.Columns[ci].Name, tok, off))
				if terms[tok] == nil {
					terms[tok] = map[int64]bool{}
				}
				terms[tok][id] = true
			}
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	require.Equal(e.t, want, got, "%s token instances", f)
	for term, ids := range terms {
		var wantIDs, gotIDs []int64
		for id := range ids {
			wantIDs = append(wantIDs, id)
		}
		rows, err := conn.QueryContext(e.ctx, fmt.Sprintf(`SELECT rowid FROM %[1]s WHERE %[1]s MATCH ?`, f), `"`+term+`"`)
		require.NoError(e.t, err)
		for rows.Next() {
			var id int64
			require.NoError(e.t, rows.Scan(&id))
			gotIDs = append(gotIDs, id)
		}
		rows.Close()
		slices.Sort(wantIDs)
		slices.Sort(gotIDs)
		require.Equal(e.t, wantIDs, gotIDs, "%s MATCH %q", f, term)
	}
	if sp.FTS.Mode == outbox.ModeExternal {
		return
	}
	rows, err = conn.QueryContext(e.ctx, fmt.Sprintf("SELECT rowid, deleted FROM %s", f))
	require.NoError(e.t, err)
	gotDel := map[int64]bool{}
	for rows.Next() {
		var id, d int64
		require.NoError(e.t, rows.Scan(&id, &d))
		gotDel[id] = d == 1
	}
	require.NoError(e.t, rows.Err())
	rows.Close()
	require.Equal(e.t, deleted, gotDel, "%s deleted flags", f)
}

func (e *env) drain(ix *indexer.Indexer) int {
	e.t.Helper()
	n, err := ix.Drain(e.ctx)
	require.NoError(e.t, err)
	return n
}

var _ = math.Abs

func withBatch(n int) indexer.Option { return indexer.WithBatchSize(n) }

// inertTriggers replaces source's capture triggers with triggers of the
// same names that never fire.
func inertTriggers(t testing.TB, db *sql.DB, source string) {
	t.Helper()
	require.NoError(t, outbox.DropTriggers(context.Background(), db, source))
	for _, n := range outbox.TriggerNames(source) {
		_, err := db.Exec(`CREATE TRIGGER ` + outbox.Quote(n) + ` AFTER DELETE ON ` + outbox.Quote(source) + ` WHEN 0 BEGIN SELECT 1; END`)
		require.NoError(t, err)
	}
}
