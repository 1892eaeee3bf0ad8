package tests

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

// srcRow is a source row as the reference sees it.
type srcRow struct {
	deleted bool
	text    []string // m.textCols order
	meta    []any    // m.meta order, normalized
}

// tokens tokenizes like FTS5's unicode61 on ASCII text: lower-case, split
// on anything that is not a letter or a digit.
func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

func keyString(k any) string { return fmt.Sprintf("%T:%v", k, k) }

func normKey(t require.TestingT, k any) any {
	switch x := k.(type) {
	case int64:
		return x
	case string:
		return x
	case []byte:
		return string(x)
	}
	require.Failf(t, "bad key", "key %v of type %T", k, k)
	return nil
}

func normMeta(kind metaKind, v any) any {
	if v == nil { // vec0 metadata columns hold no NULL: the indexer stores the zero value
		switch kind {
		case kindSmallInt, kindBool:
			return int64(0)
		case kindRating:
			return float64(0)
		}
		return ""
	}
	switch kind {
	case kindSmallInt, kindBool:
		switch x := v.(type) {
		case bool:
			if x {
				return int64(1)
			}
			return int64(0)
		case int64:
			return x
		case float64:
			return int64(x)
		}
	case kindRating:
		switch x := v.(type) {
		case int64:
			return float64(x)
		case float64:
			return x
		}
	default:
		switch x := v.(type) {
		case nil:
			return ""
		case []byte:
			return string(x)
		case string:
			return x
		}
	}
	return fmt.Sprintf("%T:%v", v, v)
}

// source reads the source table of m.
func (e *modelEnv) source(m *mt) map[any]srcRow {
	sel := []string{outbox.Quote(m.keyCol), "0"}
	if m.soft {
		sel[1] = "deleted_at IS NOT NULL"
	}
	for _, c := range m.textCols {
		sel = append(sel, outbox.Quote(c))
	}
	for _, c := range m.meta {
		sel = append(sel, outbox.Quote(c.col))
	}
	rows, err := e.sql.QueryContext(e.ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(sel, ", "), m.name))
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[any]srcRow{}
	for rows.Next() {
		var k any
		var r srcRow
		text := make([]sql.NullString, len(m.textCols))
		meta := make([]any, len(m.meta))
		dest := []any{&k, &r.deleted}
		for i := range text {
			dest = append(dest, &text[i])
		}
		for i := range meta {
			dest = append(dest, &meta[i])
		}
		require.NoError(e.t, rows.Scan(dest...))
		for _, s := range text {
			r.text = append(r.text, s.String)
		}
		for i, c := range m.meta {
			r.meta = append(r.meta, normMeta(c.kind, meta[i]))
		}
		out[normKey(e.t, k)] = r
	}
	require.NoError(e.t, rows.Err())
	return out
}

// keymap returns FTS5 rowid → key for a text-key table.
func (e *modelEnv) keymap(m *mt) map[int64]any {
	rows, err := e.sql.QueryContext(e.ctx, "SELECT rid, key FROM oi_keymap WHERE tbl = ?", m.name)
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[int64]any{}
	for rows.Next() {
		var rid int64
		var k any
		require.NoError(e.t, rows.Scan(&rid, &k))
		out[rid] = normKey(e.t, k)
	}
	require.NoError(e.t, rows.Err())
	return out
}

func (e *modelEnv) ftsKey(m *mt, km map[int64]any, rid int64) any {
	if m.intKey {
		return rid
	}
	k, ok := km[rid]
	require.True(e.t, ok, "%s: FTS5 rowid %d has no key in oi_keymap", m.ftsTable, rid)
	return k
}

// encodeLE is the little-endian float32 encoding of v (vec0's), as the
// log carries it.
func encodeLE(v []float32) []byte {
	b, err := outbox.EncodeVector(v, len(v), outbox.EncodingBinary)
	if err != nil {
		panic(err) // vectors read back from vec0 or made by the test are finite
	}
	return b
}

// vecRows reads the vec0 sidecar of m: key → "hex(vector)|deleted|meta…".
// live returns a copy of m naming the live generations of its sidecars
// (an online rebuild changes them).
func (e *modelEnv) live(m *mt) *mt {
	c := *m
	for _, p := range []*string{&c.vecTable, &c.auxTable, &c.ftsTable} {
		if *p != "" {
			n, err := outbox.LiveTable(e.ctx, e.sql, *p)
			require.NoError(e.t, err)
			*p = n
		}
	}
	return &c
}

func (e *modelEnv) vecRows(m *mt) map[any]string {
	m = e.live(m)
	keyCol := "rowid"
	if !m.intKey {
		keyCol = "id"
	}
	sel := []string{keyCol, m.vecCol}
	if m.vecCol == "vec" {
		sel[1] = "embedding"
	}
	sel = append(sel, "0")
	if m.soft {
		sel[2] = "deleted"
	}
	for _, c := range m.meta {
		sel = append(sel, c.col)
	}
	rows, err := e.sql.QueryContext(e.ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(sel, ", "), m.vecTable))
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[any]string{}
	for rows.Next() {
		var k any
		var v []byte
		var del int64
		meta := make([]any, len(m.meta))
		dest := []any{&k, &v, &del}
		for i := range meta {
			dest = append(dest, &meta[i])
		}
		require.NoError(e.t, rows.Scan(dest...))
		parts := []string{hex.EncodeToString(v), fmt.Sprint(del != 0)}
		for i, c := range m.meta {
			parts = append(parts, fmt.Sprintf("%#v", normMeta(c.kind, meta[i])))
		}
		out[normKey(e.t, k)] = strings.Join(parts, "|")
	}
	require.NoError(e.t, rows.Err())
	return out
}

// wantVec is what vecRows must return, from the source and the reference.
func (e *modelEnv) wantVec(m *mt, src map[any]srcRow) map[any]string {
	out := map[any]string{}
	for k, v := range e.ref[m.name] {
		r, ok := src[k]
		require.True(e.t, ok, "reference has a vector for %s %v, which has no source row", m.name, k)
		parts := []string{hex.EncodeToString(encodeLE(v)), fmt.Sprint(r.deleted)}
		for _, x := range r.meta {
			parts = append(parts, fmt.Sprintf("%#v", x))
		}
		out[k] = strings.Join(parts, "|")
	}
	return out
}

// auxRows reads the second vector field's vec0 sidecar of m: key →
// "hex(vector)|deleted".
func (e *modelEnv) auxRows(m *mt) map[any]string {
	m = e.live(m)
	keyCol := "rowid"
	if !m.intKey {
		keyCol = "id"
	}
	del := "0"
	if m.soft {
		del = "deleted"
	}
	rows, err := e.sql.QueryContext(e.ctx, fmt.Sprintf("SELECT %s, %s, %s FROM %s", keyCol, m.auxCol, del, m.auxTable))
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[any]string{}
	for rows.Next() {
		var k any
		var v []byte
		var d int64
		require.NoError(e.t, rows.Scan(&k, &v, &d))
		out[normKey(e.t, k)] = hex.EncodeToString(v) + "|" + fmt.Sprint(d != 0)
	}
	require.NoError(e.t, rows.Err())
	return out
}

// wantAux is what auxRows must return: the second field holds aux(v) of
// every first vector v of the reference.
func (e *modelEnv) wantAux(m *mt, src map[any]srcRow) map[any]string {
	out := map[any]string{}
	for k, v := range e.ref[m.name] {
		r, ok := src[k]
		require.True(e.t, ok, "reference has a vector for %s %v, which has no source row", m.name, k)
		out[k] = hex.EncodeToString(encodeLE(m.aux(v))) + "|" + fmt.Sprint(r.deleted)
	}
	return out
}

// ftsRows reads the documents of the FTS5 sidecar of m: key → "deleted|text…"
// (in-table), "deleted" (contentless) or "" (external: the text and flag are
// the source's).
func (e *modelEnv) ftsRows(m *mt, km map[int64]any) map[any]string {
	m = e.live(m)
	var q string
	switch m.ftsMode {
	case outbox.ModeExternal:
		q = fmt.Sprintf("SELECT id FROM %s_docsize", m.ftsTable)
	case outbox.ModeInTable:
		cols := []string{"rowid"}
		if m.soft {
			cols = append(cols, "deleted")
		} else {
			cols = append(cols, "0")
		}
		for _, c := range m.ftsCols {
			cols = append(cols, outbox.Quote(c))
		}
		q = fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), m.ftsTable)
	default:
		del := "0"
		if m.soft {
			del = "deleted"
		}
		q = fmt.Sprintf("SELECT rowid, %s FROM %s", del, m.ftsTable)
	}
	rows, err := e.sql.QueryContext(e.ctx, q)
	require.NoError(e.t, err)
	defer rows.Close()
	n, err := rows.Columns()
	require.NoError(e.t, err)
	out := map[any]string{}
	for rows.Next() {
		vals := make([]any, len(n))
		dest := make([]any, len(n))
		for i := range vals {
			dest[i] = &vals[i]
		}
		require.NoError(e.t, rows.Scan(dest...))
		k := e.ftsKey(m, km, vals[0].(int64))
		var parts []string
		for _, v := range vals[1:] {
			switch x := v.(type) {
			case nil:
				parts = append(parts, "")
			case []byte:
				parts = append(parts, string(x))
			case int64:
				parts = append(parts, fmt.Sprint(x != 0))
			default:
				parts = append(parts, fmt.Sprint(x))
			}
		}
		_, dup := out[k]
		require.False(e.t, dup, "%s: key %v indexed twice", m.ftsTable, k)
		out[k] = strings.Join(parts, "|")
	}
	require.NoError(e.t, rows.Err())
	return out
}

func (e *modelEnv) wantFTS(m *mt, src map[any]srcRow) map[any]string {
	out := map[any]string{}
	for k, r := range src {
		switch m.ftsMode {
		case outbox.ModeExternal:
			out[k] = ""
		case outbox.ModeInTable:
			out[k] = strings.Join(append([]string{fmt.Sprint(r.deleted)}, r.text...), "|")
		default:
			out[k] = fmt.Sprint(r.deleted)
		}
	}
	return out
}

// vocabRows reads the FTS5 index itself through an fts5vocab table:
// "term|column|documents|instances" (instances only with detail=full).
// Stale tokens (a delete that missed) show up here in every mode.
func (e *modelEnv) vocabRows(m *mt) []string {
	m = e.live(m)
	conn, err := e.sql.Conn(e.ctx)
	require.NoError(e.t, err)
	defer conn.Close()
	v := "temp." + m.ftsTable + "_v"
	_, err = conn.ExecContext(e.ctx, fmt.Sprintf("CREATE VIRTUAL TABLE IF NOT EXISTS %s USING fts5vocab(main, '%s', 'col')", v, m.ftsTable))
	require.NoError(e.t, err)
	defer conn.ExecContext(e.ctx, "DROP TABLE IF EXISTS "+v)
	rows, err := conn.QueryContext(e.ctx, "SELECT term, col, doc, cnt FROM "+v)
	require.NoError(e.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var term, col string
		var doc int64
		var cnt sql.NullInt64
		require.NoError(e.t, rows.Scan(&term, &col, &doc, &cnt))
		c := cnt.Int64
		if m.ftsDetail != "" {
			c = -1
		}
		out = append(out, fmt.Sprintf("%s|%s|%d|%d", term, col, doc, c))
	}
	require.NoError(e.t, rows.Err())
	sort.Strings(out)
	return out
}

func (e *modelEnv) wantVocab(m *mt, src map[any]srcRow) []string {
	type tc struct{ term, col string }
	doc, cnt := map[tc]int64{}, map[tc]int64{}
	for _, r := range src {
		for i, s := range r.text {
			seen := map[string]bool{}
			for _, w := range tokens(s) {
				k := tc{w, m.ftsCols[i]}
				cnt[k]++
				if !seen[w] {
					seen[w] = true
					doc[k]++
				}
			}
		}
	}
	var out []string
	for k, d := range doc {
		c := cnt[k]
		if m.ftsDetail != "" {
			c = -1
		}
		out = append(out, fmt.Sprintf("%s|%s|%d|%d", k.term, k.col, d, c))
	}
	sort.Strings(out)
	return out
}

// match runs an FTS5 MATCH on the sidecar and returns the keys.
func (e *modelEnv) match(m *mt, km map[int64]any, expr string) []string {
	m = e.live(m)
	rows, err := e.sql.QueryContext(e.ctx, fmt.Sprintf("SELECT rowid FROM %s WHERE %s MATCH ?", m.ftsTable, m.ftsTable), expr)
	require.NoError(e.t, err)
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var rid int64
		require.NoError(e.t, rows.Scan(&rid))
		out = append(out, keyString(e.ftsKey(m, km, rid)))
	}
	require.NoError(e.t, rows.Err())
	sort.Strings(out)
	return out
}

// bruteMatch returns the keys of the source rows that have a token
// satisfying ok in column col (-1: any column), sorted.
func bruteMatch(src map[any]srcRow, col int, ok func(string) bool, live bool) []string {
	out := []string{}
	for k, r := range src {
		if live && r.deleted {
			continue
		}
		hit := false
		for i, s := range r.text {
			if col >= 0 && i != col {
				continue
			}
			if slices.ContainsFunc(tokens(s), ok) {
				hit = true
			}
		}
		if hit {
			out = append(out, keyString(k))
		}
	}
	sort.Strings(out)
	return out
}

// lines renders a key → value map as sorted lines, for readable diffs.
func lines(m map[any]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, keyString(k)+" → "+v)
	}
	sort.Strings(out)
	return out
}

func keyStrings(keys []any) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = keyString(k)
	}
	sort.Strings(out)
	return out
}

// check asserts that every sidecar equals the reference. Tables loaded by
// raw SQL since their last rebuild are skipped (only a rebuild repairs them).
func (e *modelEnv) check(when string) {
	t := e.t
	e.logf("check %s", when)
	for _, m := range e.tables {
		if e.dirty[m.name] {
			continue
		}
		src := e.source(m)
		for _, d := range m.derived {
			require.Equal(t, lines(e.wantDerived(m, d)), lines(e.derivedRows(d)), "%s: vec0 sidecar %s of the vector derived from %v differs from the vectors of the current text", when, d.table, d.from)
		}
		if m.vecField != "" {
			require.Equal(t, lines(e.wantVec(m, src)), lines(e.vecRows(m)), "%s: vec0 sidecar %s differs from the reference (key → vector|deleted|metadata)", when, m.vecTable)
			if m.auxField != "" {
				require.Equal(t, lines(e.wantAux(m, src)), lines(e.auxRows(m)), "%s: vec0 sidecar %s of the second vector field differs from the reference (key → vector|deleted)", when, m.auxTable)
			}
			e.checkKNN(m, src)
		}
		if m.ftsTable == "" {
			continue
		}
		var km map[int64]any
		if !m.intKey {
			km = e.keymap(m)
		}
		require.Equal(t, lines(e.wantFTS(m, src)), lines(e.ftsRows(m, km)), "%s: FTS5 sidecar %s: documents differ from the source", when, m.ftsTable)
		require.Equal(t, e.wantVocab(m, src), e.vocabRows(m), "%s: FTS5 sidecar %s: index terms differ from the source (term|column|docs|instances)", when, m.ftsTable)
		live := outbox.Quote(e.live(m).ftsTable)
		_, err := e.sql.ExecContext(e.ctx, fmt.Sprintf("INSERT INTO %s (%s, rank) VALUES ('integrity-check', 1)", live, live))
		require.NoError(t, err, "%s: FTS5 integrity-check of %s", when, m.ftsTable)
		for range 3 {
			w := pickOne(e.r, vocab)
			require.Equal(t, bruteMatch(src, -1, func(s string) bool { return s == w }, false), e.match(m, km, `"`+w+`"`), "%s: %s MATCH %q", when, m.ftsTable, w)
			pre := w[:2]
			require.Equal(t, bruteMatch(src, -1, func(s string) bool { return strings.HasPrefix(s, pre) }, false), e.match(m, km, `"`+pre+`" *`), "%s: %s MATCH %q*", when, m.ftsTable, pre)
			if len(m.ftsCols) > 1 {
				i := e.r.IntN(len(m.ftsCols))
				require.Equal(t, bruteMatch(src, i, func(s string) bool { return s == w }, false), e.match(m, km, m.ftsCols[i]+` : "`+w+`"`), "%s: %s MATCH %s : %q", when, m.ftsTable, m.ftsCols[i], w)
			}
			// Search through the query API: soft-deleted rows excluded unless asked.
			incl := e.r.IntN(2) == 0
			keys, err := m.search(e.ctx, e.db, ftssink.Term(w), incl)
			require.NoError(t, err)
			require.Equal(t, bruteMatch(src, -1, func(s string) bool { return s == w }, !incl), keyStrings(keys), "%s: Search[%s](%q) includeDeleted=%v", when, m.name, w, incl)
		}
	}
}

// checkKNN runs KNN with a k that covers every vector: it must return every
// live row with a vector (every row with IncludeDeleted), nearest first.
func (e *modelEnv) checkKNN(m *mt, src map[any]srcRow) {
	incl := e.r.IntN(2) == 0
	var want []string
	for k := range e.ref[m.name] {
		if incl || !src[k].deleted {
			want = append(want, keyString(k))
		}
	}
	sort.Strings(want)
	q := make([]float32, m.dim)
	for i := range q {
		q[i] = float32(e.r.NormFloat64())
	}
	keys, dist, err := m.knn(e.ctx, e.db, q, len(e.ref[m.name])+3, incl)
	require.NoError(e.t, err)
	got := keyStrings(keys)
	if want == nil {
		want = []string{}
	}
	require.Equal(e.t, want, got, "KNN[%s] includeDeleted=%v returned other keys than the reference", m.name, incl)
	for i := 1; i < len(dist); i++ {
		if !math.IsNaN(dist[i-1]) && !math.IsNaN(dist[i]) {
			require.LessOrEqual(e.t, dist[i-1], dist[i], "KNN[%s]: distances not in order", m.name)
		}
	}
}

func (e *modelEnv) checkStatus(st indexer.Status) {
	for _, ts := range st.Tables {
		m := e.by[ts.Table]
		if m == nil {
			continue
		}
		src := e.source(m)
		require.Equal(e.t, int64(len(src)), ts.SourceRows, "status of %s: source rows", m.name)
		require.Empty(e.t, ts.Error, "status of %s", m.name)
		for _, sc := range ts.Sidecars {
			require.True(e.t, sc.Exists, "status of %s: sidecar %s", m.name, sc.Name)
			isDerived := false
			for _, d := range m.derived {
				if sc.Name == d.table {
					isDerived = true
					require.Equal(e.t, int64(len(e.wantDerived(m, d))), sc.Rows, "status of %s: vectors in %s", m.name, sc.Name)
				}
			}
			switch {
			case isDerived:
			case sc.Kind == "vec0":
				require.Equal(e.t, int64(len(e.ref[m.name])), sc.Rows, "status of %s: vectors in %s", m.name, sc.Name)
			default:
				require.Equal(e.t, int64(len(src)), sc.Rows, "status of %s: documents in %s", m.name, sc.Name)
			}
		}
	}
}

// snapshot is a canonical dump of every sidecar (by key, not by rowid).
func (e *modelEnv) snapshot() map[string][]string {
	out := map[string][]string{}
	for _, m := range e.tables {
		var lines []string
		for _, d := range m.derived {
			for k, v := range e.derivedRows(d) {
				lines = append(lines, "derived "+d.table+" "+keyString(k)+" "+v)
			}
		}
		if m.vecField != "" {
			for k, v := range e.vecRows(m) {
				lines = append(lines, "vec "+keyString(k)+" "+v)
			}
			if m.auxField != "" {
				for k, v := range e.auxRows(m) {
					lines = append(lines, "aux "+keyString(k)+" "+v)
				}
			}
		}
		if m.ftsTable != "" {
			var km map[int64]any
			if !m.intKey {
				km = e.keymap(m)
			}
			for k, v := range e.ftsRows(m, km) {
				lines = append(lines, "fts "+keyString(k)+" "+v)
			}
			for _, v := range e.vocabRows(m) {
				lines = append(lines, "vocab "+v)
			}
		}
		sort.Strings(lines)
		out[m.name] = lines
	}
	return out
}

// derivedRows reads a derived vec0 sidecar: rowid → hex vector (and, for
// chunks, |start|end).
func (e *modelEnv) derivedRows(d derivedField) map[any]string {
	table, err := outbox.LiveTable(e.ctx, e.sql, d.table)
	require.NoError(e.t, err)
	q := fmt.Sprintf("SELECT rowid, %s, 0, 0 FROM %s", outbox.Quote(d.column), outbox.Quote(table))
	if d.chunk > 0 {
		q = fmt.Sprintf("SELECT rowid, %s, chunk_start, chunk_end FROM %s", outbox.Quote(d.column), outbox.Quote(table))
	}
	rows, err := e.sql.QueryContext(e.ctx, q)
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[any]string{}
	for rows.Next() {
		var k, s, en int64
		var b []byte
		require.NoError(e.t, rows.Scan(&k, &b, &s, &en))
		out[k] = fmt.Sprintf("%x|%d|%d", b, s, en)
	}
	require.NoError(e.t, rows.Err())
	return out
}

// wantDerived is what a derived sidecar of m must hold: for every row whose
// from= text is not blank, the HashEmbedder vector of that text, or of each
// of its chunks (at rowid key*MaxChunks+i, with its span).
func (e *modelEnv) wantDerived(m *mt, d derivedField) map[any]string {
	cols := make([]string, len(d.from))
	for i, c := range d.from {
		cols[i] = outbox.Quote(c)
	}
	rows, err := e.sql.QueryContext(e.ctx, fmt.Sprintf("SELECT %s, %s FROM %s", outbox.Quote(m.keyCol), strings.Join(cols, ", "), outbox.Quote(m.name)))
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[any]string{}
	for rows.Next() {
		var k int64
		vals := make([]any, len(cols))
		dest := []any{&k}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		require.NoError(e.t, rows.Scan(dest...))
		text := outbox.EmbedText(vals)
		if strings.TrimSpace(text) == "" {
			continue
		}
		if d.chunk == 0 {
			v, err := vecsink.HashEmbedder(d.dim).Embed(e.ctx, []string{text})
			require.NoError(e.t, err)
			out[k] = fmt.Sprintf("%x|0|0", encodeLE(v[0]))
			continue
		}
		if k <= -outbox.MaxChunkKey || k >= outbox.MaxChunkKey {
			continue // parked: no chunk rowid for such a key (see parkedChunkKeys)
		}
		ch, err := vecsink.NewChunker(d.chunk, d.overlap)
		require.NoError(e.t, err)
		for i, c := range ch.Split(text) {
			v, err := vecsink.HashEmbedder(d.dim).Embed(e.ctx, []string{c.Text})
			require.NoError(e.t, err)
			id, err := outbox.ChunkRowID(k, i)
			require.NoError(e.t, err)
			out[id] = fmt.Sprintf("%x|%d|%d", encodeLE(v[0]), c.Start, c.End)
		}
	}
	require.NoError(e.t, rows.Err())
	return out
}
