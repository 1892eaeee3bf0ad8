package tests

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// vocab is the vocabulary of every text: lower-case ASCII words, so that the
// brute-force tokenizer (unicode61 on ASCII: lower-case, split on anything
// but letters and digits) is trivial. Texts mix cases and separators.
var vocab = strings.Fields("apple berry cherry delta echo falcon garden harbor island jungle kettle lemon mango nectar olive pepper 42")

var separators = []string{" ", " ", " ", ", ", ". ", "-", "  ", "/", "'"}

func (e *modelEnv) sentence() string {
	n := e.r.IntN(7)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(pickOne(e.r, separators))
		}
		w := pickOne(e.r, vocab)
		switch e.r.IntN(6) {
		case 0:
			w = strings.ToUpper(w)
		case 1:
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
	}
	return b.String()
}

// vector returns a random vector of m, or nil (no vector) one time in five.
func (e *modelEnv) vector(m *mt) []float32 {
	if e.r.IntN(5) == 0 {
		return nil
	}
	v := make([]float32, m.dim)
	for i := range v {
		v[i] = float32(e.r.NormFloat64())
		if e.r.IntN(10) == 0 {
			// Values whose bits must survive every encoding exactly
			// (binary and JSON): negative zero, subnormals, the smallest
			// normal, decimals that are not binary fractions, large ones.
			v[i] = pickOne(e.r, specialFloats)
		}
	}
	return v
}

var specialFloats = []float32{float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, 1.17549435e-38, 0.1, 1.0 / 3, 16777217, 3e10, -2.5e-20, 123456.789}

func (e *modelEnv) metaValue(k metaKind) any {
	switch k {
	case kindLang:
		return pickOne(e.r, []string{"en", "fr", "de", ""})
	case kindSmallInt:
		return int64(e.r.IntN(10))
	case kindTag:
		return pickOne(e.r, []string{"red", "blue", ""})
	case kindBool:
		return e.r.IntN(2) == 0
	default:
		return float64(e.r.IntN(100)) / 4
	}
}

func setField(v reflect.Value, name string, x any) {
	f := reflect.Indirect(v).FieldByName(name)
	f.Set(reflect.ValueOf(x).Convert(f.Type()))
}

// fill sets every column of a row to random values and its vector; it
// returns the vector.
func (e *modelEnv) fill(m *mt, row reflect.Value) []float32 {
	for _, f := range m.textField {
		setField(row, f, e.sentence())
	}
	for _, c := range append(append([]colDesc{}, m.meta...), m.plain...) {
		setField(row, c.field, e.metaValue(c.kind))
	}
	if m.vecField == "" {
		return nil
	}
	v := e.vector(m)
	m.setVec(row, v)
	return v
}

// oddKeys are string keys that look like numbers, or have spaces, quotes
// or non-ASCII letters; oddInts are integer keys beyond float64 precision.
var (
	oddKeys = []string{"42", "007", "1e3", "a b", "it's", "ü", "-1"}
	oddInts = []int64{1<<53 + 1, 1 << 62}
)

// randKey returns a key of the small key space gorm writes use.
func (e *modelEnv) randKey(m *mt) any {
	odd := e.r.IntN(12) == 0
	switch {
	case m.intKey && odd && !m.uintKey:
		return pickOne(e.r, oddInts)
	case m.intKey:
		return int64(1 + e.r.IntN(24))
	case odd:
		return pickOne(e.r, oddKeys)
	}
	return fmt.Sprintf("k%02d", e.r.IntN(24))
}

type rowState struct {
	key     any
	deleted bool
}

// rowsWhere returns the rows of m (soft-deleted ones too) matching where,
// read on db (the current transaction, if any), in key order.
func (e *modelEnv) rowsWhere(db *gorm.DB, m *mt, where string, args ...any) []rowState {
	del := "0"
	if m.soft {
		del = "deleted_at IS NOT NULL"
	}
	q := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s ORDER BY 1", outbox.Quote(m.keyCol), del, m.name, where)
	rows, err := db.Session(&gorm.Session{NewDB: true}).Raw(q, args...).Rows()
	require.NoError(e.t, err)
	defer rows.Close()
	var out []rowState
	for rows.Next() {
		var s rowState
		var k any
		require.NoError(e.t, rows.Scan(&k, &s.deleted))
		switch x := k.(type) {
		case int64:
			s.key = x
		case string:
			s.key = x
		case []byte:
			s.key = string(x)
		default:
			e.t.Fatalf("key %v of type %T", k, k)
		}
		out = append(out, s)
	}
	require.NoError(e.t, rows.Err())
	return out
}

func (e *modelEnv) state(db *gorm.DB, m *mt, key any) (exists, deleted bool) {
	rs := e.rowsWhere(db, m, outbox.Quote(m.keyCol)+" = ?", key)
	if len(rs) == 0 {
		return false, false
	}
	return true, rs[0].deleted
}

// absentKey returns a key with no row, or nil.
func (e *modelEnv) absentKey(db *gorm.DB, m *mt) any {
	for range 10 {
		k := e.randKey(m)
		if ok, _ := e.state(db, m, k); !ok {
			return k
		}
	}
	return nil
}

// someKey returns the key of an existing row most of the time (raw rows
// included), else a random key.
func (e *modelEnv) someKey(db *gorm.DB, m *mt) any {
	if e.r.IntN(8) > 0 {
		if rs := e.rowsWhere(db, m, "1 = 1"); len(rs) > 0 {
			return pickOne(e.r, rs).key
		}
	}
	return e.randKey(m)
}

// visible reports whether a scoped (or unscoped) single-row write reaches
// the row.
func visible(m *mt, exists, deleted, unscoped bool) bool {
	return exists && (!m.soft || !deleted || unscoped)
}

func (e *modelEnv) setRef(m *mt, key any, v []float32) {
	if m.vecField == "" {
		return
	}
	if len(v) == 0 {
		delete(e.ref[m.name], key)
		return
	}
	e.ref[m.name][key] = append([]float32(nil), v...)
}

func (e *modelEnv) dropRef(m *mt, key any) { delete(e.ref[m.name], key) }

// writeRef records a write of v to an existing (or new) row: an empty
// vector leaves the stored one alone (only gormplugin.ClearVector clears).
func (e *modelEnv) writeRef(m *mt, key any, v []float32) {
	if len(v) > 0 {
		e.setRef(m, key, v)
	}
}

func (e *modelEnv) ok(res *gorm.DB) *gorm.DB {
	e.t.Helper()
	require.NoError(e.t, res.Error, "step %d", e.step)
	return res
}

func vdesc(v []float32) string {
	if v == nil {
		return "novec"
	}
	return fmt.Sprintf("vec%.3f", v[0])
}

// A write op returns false when it does not apply to the model or state.
type writeOp struct {
	name   string
	weight int
	fn     func(e *modelEnv, db *gorm.DB, m *mt) bool
}

var writeOps = []writeOp{
	{"create", 6, (*modelEnv).opCreate},
	{"create from map", 2, (*modelEnv).opCreateMap},
	{"create omitting the vector", 1, (*modelEnv).opCreateOmit},
	{"create slice", 3, (*modelEnv).opCreateSlice},
	{"create in batches", 2, (*modelEnv).opCreateInBatches},
	{"save insert", 2, (*modelEnv).opSaveInsert},
	{"save update", 3, (*modelEnv).opSaveUpdate},
	{"save slice", 2, (*modelEnv).opSaveSlice},
	{"update column", 4, (*modelEnv).opUpdateColumn},
	{"update vector", 4, (*modelEnv).opUpdateVector},
	{"updates struct", 3, (*modelEnv).opUpdatesStruct},
	{"updates map", 3, (*modelEnv).opUpdatesMap},
	{"upsert", 4, (*modelEnv).opUpsert},
	{"first or create", 2, (*modelEnv).opFirstOrCreate},
	{"delete", 3, (*modelEnv).opDelete},
	{"delete slice", 2, (*modelEnv).opDeleteSlice},
	{"batch update", 3, (*modelEnv).opBatchUpdate},
	{"batch delete", 2, (*modelEnv).opBatchDelete},
	{"soft delete by update", 1, (*modelEnv).opSoftDeleteByUpdate},
	{"restore", 3, (*modelEnv).opRestore},
	{"association", 3, (*modelEnv).opAssociation},
	{"generics", 4, (*modelEnv).opGenerics},
	{"raw SQL", 3, (*modelEnv).opRawSQL},
	{"random WHERE", 2, (*modelEnv).opRandomWhere},
	{"table name case", 2, (*modelEnv).opTableCase},
	{"drop sidecars and migrate again", 1, (*modelEnv).opRemigrate},
}

var writeWeight = func() int {
	n := 0
	for _, o := range writeOps {
		n += o.weight
	}
	return n
}()

// write performs one random write through gorm on db.
func (e *modelEnv) write(db *gorm.DB) {
	for range 20 {
		x := e.r.IntN(writeWeight)
		var op writeOp
		for _, o := range writeOps {
			if x < o.weight {
				op = o
				break
			}
			x -= o.weight
		}
		if op.fn(e, db, e.pick(e.tables)) {
			return
		}
	}
}

func (e *modelEnv) opCreate(db *gorm.DB, m *mt) bool {
	var key any
	if !m.intKey || e.r.IntN(3) > 0 {
		if key = e.absentKey(db, m); key == nil {
			return false
		}
	}
	row := m.newRow(key)
	v := e.fill(m, row)
	var kids []reflect.Value
	if m.parent && e.r.IntN(3) == 0 {
		cm := e.by["m_comments"]
		for range 1 + e.r.IntN(2) {
			kid := cm.newRow(nil)
			e.fill(cm, kid)
			kids = append(kids, kid)
		}
		setField(row, "Comments", reflect.ValueOf(cm.sliceOf(kids)).Elem().Interface())
	}
	e.ok(db.Create(row.Interface()))
	k := m.keyOf(row)
	e.setRef(m, k, v)
	e.logf("create %s %v %s (%d children)", m.name, k, vdesc(v), len(kids))
	if len(kids) > 0 {
		cm := e.by["m_comments"]
		got := reflect.Indirect(row).FieldByName("Comments")
		for i := range got.Len() {
			kid := got.Index(i)
			e.setRef(cm, cm.keyOf(kid), cm.vecOf(kid))
			e.logf("  child %s %v %s", cm.name, cm.keyOf(kid), vdesc(cm.vecOf(kid)))
		}
	}
	return true
}

func (e *modelEnv) opCreateMap(db *gorm.DB, m *mt) bool {
	key := e.absentKey(db, m)
	if key == nil {
		return false
	}
	mp := map[string]any{m.keyCol: key}
	for _, c := range m.textCols {
		mp[c] = e.sentence()
	}
	for _, c := range append(append([]colDesc{}, m.meta...), m.plain...) {
		mp[c.col] = e.metaValue(c.kind)
	}
	var v []float32
	if m.vecField != "" {
		v = e.vector(m)
		if v != nil || e.r.IntN(2) == 0 {
			mp[e.vecName(m)] = v
			e.putAux(m, mp, v, false)
		}
	}
	e.ok(db.Model(m.newRow(nil).Interface()).Create(mp))
	e.setRef(m, key, v)
	e.logf("create from map %s %v %s", m.name, key, vdesc(v))
	return true
}

// opCreateOmit creates a row with Omit(vector): it has no vector.
func (e *modelEnv) opCreateOmit(db *gorm.DB, m *mt) bool {
	if m.vecField == "" {
		return false
	}
	key := e.absentKey(db, m)
	if key == nil {
		return false
	}
	row := m.newRow(key)
	e.fill(m, row)
	m.setVec(row, e.vector(m))
	name := e.vecName(m)
	omit := []string{name}
	if m.auxField != "" {
		omit = append(omit, e.auxName(m))
	}
	e.ok(db.Omit(omit...).Create(row.Interface()))
	e.setRef(m, key, nil)
	e.logf("create %s %v Omit(%s)", m.name, key, name)
	return true
}

// newRows returns n rows with distinct absent keys (auto keys for integer
// models when auto), filled.
func (e *modelEnv) newRows(db *gorm.DB, m *mt, n int, auto bool) []reflect.Value {
	seen := map[any]bool{}
	var rows []reflect.Value
	for range n {
		var key any
		if !auto {
			key = e.absentKey(db, m)
			if key == nil || seen[key] {
				continue
			}
			seen[key] = true
		}
		row := m.newRow(key)
		e.fill(m, row)
		rows = append(rows, row)
	}
	return rows
}

func (e *modelEnv) recordRows(m *mt, what string, p any) {
	keys, vecs := m.keysOfSlice(p), m.vecsOfSlice(p)
	var ds []string
	for i, k := range keys {
		e.setRef(m, k, vecs[i])
		ds = append(ds, fmt.Sprintf("%v %s", k, vdesc(vecs[i])))
	}
	e.logf("%s %s [%s]", what, m.name, strings.Join(ds, ", "))
}

func (e *modelEnv) opCreateSlice(db *gorm.DB, m *mt) bool {
	rows := e.newRows(db, m, 2+e.r.IntN(3), m.intKey && e.r.IntN(3) == 0)
	if len(rows) == 0 {
		return false
	}
	p := m.sliceOf(rows)
	e.ok(db.Create(p))
	e.recordRows(m, "create slice", p)
	return true
}

func (e *modelEnv) opCreateInBatches(db *gorm.DB, m *mt) bool {
	rows := e.newRows(db, m, 3+e.r.IntN(5), m.intKey && e.r.IntN(3) == 0)
	if len(rows) == 0 {
		return false
	}
	p := m.sliceOf(rows)
	b := 1 + e.r.IntN(3)
	e.ok(db.CreateInBatches(p, b))
	e.recordRows(m, fmt.Sprintf("create in batches of %d", b), p)
	return true
}

func (e *modelEnv) opSaveInsert(db *gorm.DB, m *mt) bool {
	var key any
	if !m.intKey || e.r.IntN(2) == 0 {
		// An absent key, or a soft-deleted row: Save's UPDATE misses it
		// and gorm falls back to an upsert that overwrites it.
		key = e.absentKey(db, m)
		if m.soft && e.r.IntN(2) == 0 {
			if rs := e.rowsWhere(db, m, "deleted_at IS NOT NULL"); len(rs) > 0 {
				key = pickOne(e.r, rs).key
			}
		}
		if key == nil {
			return false
		}
	}
	row := m.newRow(key)
	v := e.fill(m, row)
	e.ok(db.Save(row.Interface()))
	k := m.keyOf(row)
	e.writeRef(m, k, v)
	e.logf("save (insert) %s %v %s", m.name, k, vdesc(v))
	return true
}

func (e *modelEnv) opSaveUpdate(db *gorm.DB, m *mt) bool {
	key := e.someKey(db, m)
	row := m.newRow(key)
	v := e.fill(m, row)
	e.ok(db.Save(row.Interface()))
	// Save writes every field, the vector too (an empty one leaves it
	// alone), and overwrites (restores) a soft-deleted row through its
	// upsert fallback.
	e.writeRef(m, key, v)
	e.logf("save %s %v %s", m.name, key, vdesc(v))
	return true
}

func (e *modelEnv) opSaveSlice(db *gorm.DB, m *mt) bool {
	seen := map[any]bool{}
	var rows []reflect.Value
	for range 1 + e.r.IntN(3) {
		k := e.someKey(db, m)
		if seen[k] {
			continue
		}
		seen[k] = true
		row := m.newRow(k)
		e.fill(m, row)
		rows = append(rows, row)
	}
	p := m.sliceOf(rows)
	e.ok(db.Save(p)) // a slice is saved with ON CONFLICT UPDATE ALL
	keys, vecs := m.keysOfSlice(p), m.vecsOfSlice(p)
	for i, k := range keys {
		e.writeRef(m, k, vecs[i])
	}
	e.logf("save slice %s %v", m.name, keys)
	return true
}

// randColumn returns a random updatable non-key column and a random value
// for it.
func (e *modelEnv) randColumn(m *mt) (string, any) {
	type cv struct {
		col string
		val func() any
	}
	var cs []cv
	for _, c := range m.textCols {
		cs = append(cs, cv{c, func() any { return e.sentence() }})
	}
	for _, c := range append(append([]colDesc{}, m.meta...), m.plain...) {
		cs = append(cs, cv{c.col, func() any { return e.metaValue(c.kind) }})
	}
	if m.name == "m_comments" {
		cs = append(cs, cv{"doc_id", func() any { return int64(e.r.IntN(5)) }})
	}
	c := pickOne(e.r, cs)
	return c.col, c.val()
}

func (e *modelEnv) opUpdateColumn(db *gorm.DB, m *mt) bool {
	key := e.someKey(db, m)
	exists, deleted := e.state(db, m, key)
	unscoped := m.soft && e.r.IntN(3) == 0
	d := db
	if unscoped {
		d = d.Unscoped()
	}
	col, val := e.randColumn(m)
	how := "Update"
	if e.r.IntN(3) == 0 {
		how = "UpdateColumn"
		e.ok(d.Model(m.newRow(key).Interface()).UpdateColumn(col, val))
	} else {
		e.ok(d.Model(m.newRow(key).Interface()).Update(col, val))
	}
	e.logf("%s %s %v %s=%q (unscoped=%v exists=%v deleted=%v)", how, m.name, key, col, fmt.Sprint(val), unscoped, exists, deleted)
	return true
}

// auxName returns a name that designates the second vector field.
func (e *modelEnv) auxName(m *mt) string {
	if e.r.IntN(2) == 0 {
		return m.auxField
	}
	return m.auxCol
}

// putAux adds to an update map that writes first vector v (or clears it)
// the second vector field's matching value.
func (e *modelEnv) putAux(m *mt, mp map[string]any, v []float32, clear bool) {
	if m.auxField == "" {
		return
	}
	if clear {
		mp[e.auxName(m)] = gormplugin.ClearVector
		return
	}
	mp[e.auxName(m)] = m.aux(v)
}

// auxArg is the second vector field's argument of a single-column update
// that writes first vector v (or clears it, when clear).
func (m *mt) auxArg(v []float32, clear bool) any {
	if clear {
		return gormplugin.ClearVector
	}
	return m.aux(v)
}

// scoped returns db, unscoped when asked: a fresh chain for one more
// statement.
func scoped(db *gorm.DB, unscoped bool) *gorm.DB {
	if unscoped {
		return db.Unscoped()
	}
	return db.Session(&gorm.Session{})
}

// vecName returns a name that designates the vector: its column name or
// its Go field name.
func (e *modelEnv) vecName(m *mt) string {
	if e.r.IntN(2) == 0 {
		return m.vecField
	}
	return m.vecCol
}

func (e *modelEnv) opUpdateVector(db *gorm.DB, m *mt) bool {
	if m.vecField == "" {
		return false
	}
	key := e.someKey(db, m)
	exists, deleted := e.state(db, m, key)
	unscoped := m.soft && e.r.IntN(4) == 0
	d := db
	if unscoped {
		d = d.Unscoped()
	}
	v := e.vector(m)
	model := m.newRow(key).Interface()
	name := e.vecName(m)
	set := true
	var how string
	switch e.r.IntN(6) {
	case 0:
		how = "Update(" + name + ")"
		var arg any = v
		if v == nil {
			arg = gormplugin.ClearVector
		}
		e.ok(d.Model(model).Update(name, arg))
		if m.auxField != "" {
			e.ok(scoped(db, unscoped).Model(m.newRow(key).Interface()).Update(e.auxName(m), m.auxArg(v, v == nil)))
		}
	case 1:
		how = "UpdateColumn(" + name + ")"
		e.ok(d.Model(model).UpdateColumn(name, v))
		if m.auxField != "" {
			e.ok(scoped(db, unscoped).Model(m.newRow(key).Interface()).UpdateColumn(e.auxName(m), m.aux(v)))
		}
		set = len(v) > 0
	case 2:
		how = "Updates(map " + name + ")"
		mp := map[string]any{name: v}
		if v == nil {
			mp[name] = gormplugin.ClearVector
		}
		e.putAux(m, mp, v, v == nil)
		e.ok(d.Model(model).Updates(mp))
	case 3:
		how = "UpdateColumns(map " + name + ")"
		var arg any = v
		if v == nil {
			arg = gormplugin.ClearVector
		}
		mp := map[string]any{name: arg}
		e.putAux(m, mp, v, v == nil)
		e.ok(d.Model(model).UpdateColumns(mp))
	case 4:
		// A struct update: an empty vector is a zero field, not written.
		how = "Updates(struct with the vector only)"
		p := m.newRow(nil)
		m.setVec(p, v)
		e.ok(d.Model(model).Updates(p.Interface()))
		set = len(v) > 0
	default:
		// Even selected, an empty vector leaves the stored one alone.
		how = "Select(" + name + ").Updates(struct)"
		set = len(v) > 0
		p := m.newRow(nil)
		m.setVec(p, v)
		sel := []any{}
		if m.auxField != "" {
			sel = append(sel, e.auxName(m))
		}
		e.ok(d.Model(model).Select(name, sel...).Updates(p.Interface()))
	}
	if set && visible(m, exists, deleted, unscoped) {
		e.setRef(m, key, v)
	}
	e.logf("%s %s %v %s (unscoped=%v exists=%v deleted=%v)", how, m.name, key, vdesc(v), unscoped, exists, deleted)
	return true
}

func (e *modelEnv) opUpdatesStruct(db *gorm.DB, m *mt) bool {
	key := e.someKey(db, m)
	exists, deleted := e.state(db, m, key)
	p := m.newRow(nil)
	var what []string
	for i, f := range m.textField {
		if e.r.IntN(2) == 0 {
			s := e.sentence()
			setField(p, f, s) // "" is a zero value: not written
			what = append(what, fmt.Sprintf("%s=%q", m.textCols[i], s))
		}
	}
	for _, c := range append(append([]colDesc{}, m.meta...), m.plain...) {
		if e.r.IntN(3) == 0 {
			x := e.metaValue(c.kind)
			setField(p, c.field, x)
			what = append(what, fmt.Sprintf("%s=%v", c.col, x))
		}
	}
	var v []float32
	if m.vecField != "" && e.r.IntN(2) == 0 {
		v = e.vector(m)
		m.setVec(p, v)
		what = append(what, vdesc(v))
	}
	e.ok(db.Model(m.newRow(key).Interface()).Updates(p.Interface()))
	if len(v) > 0 && visible(m, exists, deleted, false) {
		e.setRef(m, key, v)
	}
	e.logf("Updates(struct) %s %v %s (exists=%v deleted=%v)", m.name, key, strings.Join(what, " "), exists, deleted)
	return true
}

// randMap returns a random update map and, when it names the vector, the
// vector.
func (e *modelEnv) randMap(m *mt) (map[string]any, bool, []float32) {
	mp := map[string]any{}
	for range 1 + e.r.IntN(2) {
		c, v := e.randColumn(m)
		mp[c] = v
	}
	var v []float32
	withVec := m.vecField != "" && e.r.IntN(2) == 0
	if withVec {
		v = e.vector(m)
		if v == nil {
			mp[e.vecName(m)] = gormplugin.ClearVector
		} else {
			mp[e.vecName(m)] = v
		}
		e.putAux(m, mp, v, v == nil)
	}
	return mp, withVec, v
}

func (e *modelEnv) opUpdatesMap(db *gorm.DB, m *mt) bool {
	key := e.someKey(db, m)
	exists, deleted := e.state(db, m, key)
	unscoped := m.soft && e.r.IntN(4) == 0
	d := db
	if unscoped {
		d = d.Unscoped()
	}
	mp, withVec, v := e.randMap(m)
	desc := fmt.Sprint(mp)
	if e.r.IntN(3) == 0 {
		e.ok(d.Model(m.newRow(key).Interface()).UpdateColumns(mp))
		desc = "UpdateColumns" + desc
	} else {
		e.ok(d.Model(m.newRow(key).Interface()).Updates(mp))
		desc = "Updates" + desc
	}
	if withVec && visible(m, exists, deleted, unscoped) {
		e.setRef(m, key, v)
	}
	e.logf("%s %s %v (unscoped=%v exists=%v deleted=%v)", desc, m.name, key, unscoped, exists, deleted)
	return true
}

func (e *modelEnv) opUpsert(db *gorm.DB, m *mt) bool {
	seen := map[any]bool{}
	var rows []reflect.Value
	existed := map[any]bool{}
	for range 1 + e.r.IntN(4) {
		k := e.someKey(db, m)
		if e.r.IntN(3) == 0 {
			k = e.randKey(m)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		existed[k], _ = e.state(db, m, k)
		row := m.newRow(k)
		e.fill(m, row)
		rows = append(rows, row)
	}
	var oc clause.OnConflict
	vecUpdated := false
	var desc string
	switch e.r.IntN(3) {
	case 0:
		oc.DoNothing = true
		desc = "DoNothing"
	case 1:
		oc.UpdateAll = true
		vecUpdated = true
		desc = "UpdateAll"
	default:
		var cols []string
		for _, c := range m.textCols {
			if e.r.IntN(2) == 0 {
				cols = append(cols, c)
			}
		}
		for _, c := range append(append([]colDesc{}, m.meta...), m.plain...) {
			if e.r.IntN(3) == 0 {
				cols = append(cols, c.col)
			}
		}
		if m.soft && e.r.IntN(4) == 0 {
			cols = append(cols, "deleted_at")
		}
		if m.vecField != "" && e.r.IntN(2) == 0 {
			cols = append(cols, m.vecCol)
			if m.auxField != "" {
				cols = append(cols, m.auxCol)
			}
			vecUpdated = true
		}
		if len(cols) == 0 {
			cols = append(cols, m.keyCol)
		}
		oc.Columns = []clause.Column{{Name: m.keyCol}}
		oc.DoUpdates = clause.AssignmentColumns(cols)
		desc = fmt.Sprintf("DoUpdates%v", cols)
	}
	var p any
	if len(rows) == 1 && e.r.IntN(2) == 0 {
		p = rows[0].Interface()
	} else {
		p = m.sliceOf(rows)
	}
	e.ok(db.Clauses(oc).Create(p))
	var ds []string
	for _, row := range rows {
		k := m.keyOf(row)
		v := m.vecOf(row)
		switch {
		case !existed[k]:
			e.setRef(m, k, v)
		case vecUpdated:
			e.writeRef(m, k, v)
		}
		ds = append(ds, fmt.Sprintf("%v(existed=%v) %s", k, existed[k], vdesc(v)))
	}
	e.logf("upsert %s %s [%s]", desc, m.name, strings.Join(ds, ", "))
	return true
}

func (e *modelEnv) opFirstOrCreate(db *gorm.DB, m *mt) bool {
	key := e.someKey(db, m)
	if e.r.IntN(2) == 0 {
		key = e.randKey(m)
	}
	exists, deleted := e.state(db, m, key)
	if exists && deleted {
		return false // First does not see it and the create would conflict
	}
	out := m.newRow(key)
	v := e.fill(m, out)
	q := db.Where(outbox.Quote(m.keyCol)+" = ?", key)
	assign := ""
	if len(m.textCols) > 0 && e.r.IntN(2) == 0 {
		c := pickOne(e.r, m.textCols)
		s := e.sentence()
		q = q.Assign(map[string]any{c: s})
		assign = fmt.Sprintf(" assign %s=%q", c, s)
	}
	e.ok(q.FirstOrCreate(out.Interface()))
	if !exists {
		e.setRef(m, key, v)
	}
	e.logf("first or create %s %v %s%s (existed=%v)", m.name, key, vdesc(v), assign, exists)
	return true
}

// removed records the effect of a delete on the reference: hard deletes
// drop the vector.
func (e *modelEnv) removed(m *mt, affected []rowState, unscoped bool) {
	if m.soft && !unscoped {
		return
	}
	for _, s := range affected {
		e.dropRef(m, s.key)
	}
}

func (e *modelEnv) opDelete(db *gorm.DB, m *mt) bool {
	key := e.someKey(db, m)
	unscoped := m.soft && e.r.IntN(3) == 0
	d := db
	if unscoped {
		d = d.Unscoped()
	}
	affected := e.rowsWhere(db, m, outbox.Quote(m.keyCol)+" = ?", key)
	var how string
	switch {
	case m.intKey && e.r.IntN(2) == 0:
		how = "Delete(&T{}, pk)"
		e.ok(d.Delete(m.newRow(nil).Interface(), m.keyArg(key)))
	default:
		how = "Delete(&T{key})"
		e.ok(d.Delete(m.newRow(key).Interface()))
	}
	e.removed(m, affected, unscoped)
	e.logf("%s %s %v (unscoped=%v rows=%v)", how, m.name, key, unscoped, affected)
	return true
}

func (e *modelEnv) opDeleteSlice(db *gorm.DB, m *mt) bool {
	seen := map[any]bool{}
	var keys []any
	for range 1 + e.r.IntN(3) {
		k := e.someKey(db, m)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	unscoped := m.soft && e.r.IntN(3) == 0
	d := db
	if unscoped {
		d = d.Unscoped()
	}
	affected := e.rowsWhere(db, m, outbox.Quote(m.keyCol)+" IN ?", keys)
	var how string
	switch {
	case m.intKey && e.r.IntN(2) == 0:
		how = "Delete(&T{}, []pk)"
		if m.uintKey {
			ks := make([]uint, len(keys))
			for i, k := range keys {
				ks[i] = uint(k.(int64))
			}
			e.ok(d.Delete(m.newRow(nil).Interface(), ks))
		} else {
			ks := make([]int64, len(keys))
			for i, k := range keys {
				ks[i] = k.(int64)
			}
			e.ok(d.Delete(m.newRow(nil).Interface(), ks))
		}
	default:
		how = "Delete(&[]T{...})"
		rows := make([]reflect.Value, len(keys))
		for i, k := range keys {
			rows[i] = m.newRow(k)
		}
		e.ok(d.Delete(m.sliceOf(rows)))
	}
	e.removed(m, affected, unscoped)
	e.logf("%s %s %v (unscoped=%v rows=%v)", how, m.name, keys, unscoped, affected)
	return true
}

// randWhere returns a random condition on m's rows.
func (e *modelEnv) randWhere(db *gorm.DB, m *mt) (string, []any) {
	switch x := e.r.IntN(4); {
	case x == 0 && len(m.textCols) > 0:
		return outbox.Quote(pickOne(e.r, m.textCols)) + " LIKE ?", []any{"%" + pickOne(e.r, vocab) + "%"}
	case x == 1 && m.intKey:
		a := int64(e.r.IntN(26)) - 2
		return outbox.Quote(m.keyCol) + " BETWEEN ? AND ?", []any{a, a + int64(e.r.IntN(6))}
	case x == 2 && len(m.meta) > 0:
		c := pickOne(e.r, m.meta)
		return outbox.Quote(c.col) + " = ?", []any{e.metaValue(c.kind)}
	default:
		var keys []any
		for range 1 + e.r.IntN(4) {
			keys = append(keys, e.someKey(db, m))
		}
		return outbox.Quote(m.keyCol) + " IN ?", []any{keys}
	}
}

func (e *modelEnv) visibleOf(m *mt, rs []rowState, unscoped bool) []rowState {
	var out []rowState
	for _, s := range rs {
		if visible(m, true, s.deleted, unscoped) {
			out = append(out, s)
		}
	}
	return out
}

func (e *modelEnv) opBatchUpdate(db *gorm.DB, m *mt) bool {
	where, args := e.randWhere(db, m)
	unscoped := m.soft && e.r.IntN(4) == 0
	d := db
	if unscoped {
		d = d.Unscoped()
	}
	var q *gorm.DB
	var how string
	switch e.r.IntN(4) {
	case 0:
		// The model is a slice of keys: gorm updates WHERE key IN (…).
		var keys []any
		var rows []reflect.Value
		for range 1 + e.r.IntN(3) {
			k := e.someKey(db, m)
			keys = append(keys, k)
			rows = append(rows, m.newRow(k))
		}
		where, args = outbox.Quote(m.keyCol)+" IN ?", []any{keys}
		q = d.Model(m.sliceOf(rows))
		how = "Model(slice)"
	case 1:
		q = d.Model(m.newRow(nil).Interface()).Clauses(clause.Returning{}).Where(where, args...)
		how = "RETURNING"
	default:
		q = d.Model(m.newRow(nil).Interface()).Where(where, args...)
	}
	affected := e.visibleOf(m, e.rowsWhere(db, m, where, args...), unscoped)
	var desc string
	withVec := false
	var v []float32
	switch e.r.IntN(7) {
	case 0:
		col, val := e.randColumn(m)
		e.ok(q.Update(col, val))
		desc = fmt.Sprintf("Update(%s=%q)", col, fmt.Sprint(val))
	case 1:
		col, val := e.randColumn(m)
		e.ok(q.UpdateColumn(col, val))
		desc = fmt.Sprintf("UpdateColumn(%s=%q)", col, fmt.Sprint(val))
	case 2:
		// SQL expressions: the plugin cannot know the new values; the
		// indexer reads them from the source.
		switch {
		case m.soft && e.r.IntN(3) == 0:
			e.ok(q.Update("deleted_at", gorm.Expr("strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")))
			desc = "Update(deleted_at = expr now)"
		case len(m.textCols) > 0:
			col := pickOne(e.r, m.textCols)
			w := pickOne(e.r, vocab)
			if e.r.IntN(2) == 0 {
				e.ok(q.Update(col, gorm.Expr("upper("+outbox.Quote(col)+")")))
				desc = fmt.Sprintf("Update(%s = upper(%s))", col, col)
			} else {
				e.ok(q.Update(col, gorm.Expr(outbox.Quote(col)+" || ?", " "+w)))
				desc = fmt.Sprintf("Update(%s = %s || ' %s')", col, col, w)
			}
		default:
			return false
		}
	case 3:
		// A struct: zero fields (and an empty vector) are not written.
		p := m.newRow(nil)
		v = e.fill(m, p)
		withVec = len(v) > 0
		e.ok(q.Updates(p.Interface()))
		desc = "Updates(struct " + vdesc(v) + ")"
	case 4:
		if m.vecField == "" {
			return false
		}
		withVec = true
		v = e.vector(m)
		var arg any = v
		if v == nil {
			arg = gormplugin.ClearVector
		}
		if m.auxField != "" {
			mp := map[string]any{e.vecName(m): arg}
			e.putAux(m, mp, v, v == nil)
			e.ok(q.Updates(mp))
		} else {
			e.ok(q.Update(e.vecName(m), arg))
		}
		desc = "Update(vector " + vdesc(v) + ")"
	default:
		var mp map[string]any
		mp, withVec, v = e.randMap(m)
		e.ok(q.Updates(mp))
		desc = fmt.Sprintf("Updates(%v)", mp)
	}
	if withVec {
		for _, s := range affected {
			e.setRef(m, s.key, v)
		}
	}
	e.logf("batch %s %s %s WHERE %s %v (unscoped=%v rows=%v)", how, desc, m.name, where, args, unscoped, affected)
	return true
}

func (e *modelEnv) opBatchDelete(db *gorm.DB, m *mt) bool {
	where, args := e.randWhere(db, m)
	unscoped := m.soft && e.r.IntN(3) == 0
	d := db
	if unscoped {
		d = d.Unscoped()
	}
	affected := e.visibleOf(m, e.rowsWhere(db, m, where, args...), unscoped)
	how := "Where"
	switch e.r.IntN(3) {
	case 0:
		how = "inline conditions"
		e.ok(d.Delete(m.newRow(nil).Interface(), append([]any{where}, args...)...))
	case 1:
		how = "RETURNING"
		e.ok(d.Clauses(clause.Returning{}).Where(where, args...).Delete(m.sliceOf(nil)))
	default:
		e.ok(d.Where(where, args...).Delete(m.newRow(nil).Interface()))
	}
	e.removed(m, affected, unscoped)
	e.logf("batch delete (%s) %s WHERE %s %v (unscoped=%v rows=%v)", how, m.name, where, args, unscoped, affected)
	return true
}

func (e *modelEnv) opSoftDeleteByUpdate(db *gorm.DB, m *mt) bool {
	if !m.soft {
		return false
	}
	key := e.someKey(db, m)
	e.ok(db.Model(m.newRow(key).Interface()).Update("deleted_at", time.Now()))
	e.logf("Update(deleted_at=now) %s %v", m.name, key)
	return true
}

func (e *modelEnv) opRestore(db *gorm.DB, m *mt) bool {
	if !m.soft {
		return false
	}
	key := e.someKey(db, m)
	if rs := e.rowsWhere(db, m, "deleted_at IS NOT NULL"); len(rs) > 0 && e.r.IntN(4) > 0 {
		key = pickOne(e.r, rs).key
	}
	switch e.r.IntN(3) {
	case 0:
		where, args := e.randWhere(db, m)
		e.ok(db.Unscoped().Model(m.newRow(nil).Interface()).Where(where, args...).Update("deleted_at", nil))
		e.logf("batch restore %s WHERE %s %v", m.name, where, args)
		return true
	case 1:
		e.ok(db.Unscoped().Model(m.newRow(key).Interface()).Update("deleted_at", nil))
	default:
		e.ok(db.Unscoped().Model(m.newRow(key).Interface()).Updates(map[string]any{"deleted_at": gorm.DeletedAt{}}))
	}
	e.logf("restore %s %v", m.name, key)
	return true
}

// opAssociation writes comments through their parent document.
func (e *modelEnv) opAssociation(db *gorm.DB, m *mt) bool {
	if !m.parent {
		return false
	}
	cm := e.by["m_comments"]
	key := e.someKey(db, m)
	exists, deleted := e.state(db, m, key)
	newKids := func(n int) []reflect.Value {
		var kids []reflect.Value
		for range n {
			kid := cm.newRow(nil)
			e.fill(cm, kid)
			kids = append(kids, kid)
		}
		return kids
	}
	recordKids := func(p any, existing map[any]bool, full bool) {
		for i, k := range cm.keysOfSlice(p) {
			v := cm.vecsOfSlice(p)[i]
			switch {
			case !existing[k]:
				e.setRef(cm, k, v)
			case full: // an upsert of the existing child: an empty vector leaves it alone
				e.writeRef(cm, k, v)
			}
			e.logf("  child %v %s (existed=%v)", k, vdesc(v), existing[k])
		}
	}
	if e.r.IntN(2) == 0 && visible(m, exists, deleted, false) {
		kids := newKids(1 + e.r.IntN(2))
		p := cm.sliceOf(kids)
		require.NoError(e.t, db.Model(m.newRow(key).Interface()).Association("Comments").Append(p))
		e.logf("association append to %s %v", m.name, key)
		recordKids(p, nil, false)
		return true
	}
	// Save the parent with its existing children (new vectors) and new ones.
	parent := m.newRow(key)
	v := e.fill(m, parent)
	existing := map[any]bool{}
	var kids []reflect.Value
	for _, s := range e.rowsWhere(db, cm, "doc_id = ?", key) {
		if e.r.IntN(2) == 0 {
			continue
		}
		kid := cm.newRow(s.key)
		e.fill(cm, kid)
		kids = append(kids, kid)
		existing[s.key] = true
	}
	kids = append(kids, newKids(e.r.IntN(3))...)
	p := cm.sliceOf(kids)
	setField(parent, "Comments", reflect.ValueOf(p).Elem().Interface())
	full := e.r.IntN(2) == 0
	e.ok(db.Session(&gorm.Session{FullSaveAssociations: full}).Save(parent.Interface()))
	e.writeRef(m, key, v)
	e.logf("save %s %v %s with %d children (full save associations=%v)", m.name, key, vdesc(v), len(kids), full)
	recordKids(reflect.Indirect(parent).FieldByName("Comments").Addr().Interface(), existing, full)
	return true
}

func (e *modelEnv) opGenerics(db *gorm.DB, m *mt) bool {
	ctx := e.ctx
	switch e.r.IntN(4) {
	case 0:
		key := e.absentKey(db, m)
		if key == nil {
			return false
		}
		row := m.newRow(key)
		v := e.fill(m, row)
		require.NoError(e.t, m.gCreate(ctx, db, row.Interface()))
		e.setRef(m, key, v)
		e.logf("G.Create %s %v %s", m.name, key, vdesc(v))
	case 1:
		key := e.someKey(db, m)
		exists, deleted := e.state(db, m, key)
		if m.vecField != "" && e.r.IntN(2) == 0 {
			v := e.vector(m)
			_, err := m.gUpdate(ctx, db, key, e.vecName(m), v)
			require.NoError(e.t, err)
			if m.auxField != "" {
				_, err := m.gUpdate(ctx, db, key, e.auxName(m), m.aux(v))
				require.NoError(e.t, err)
			}
			if visible(m, exists, deleted, false) {
				e.writeRef(m, key, v) // an empty vector leaves it alone
			}
			e.logf("G.Update(vector) %s %v %s (exists=%v deleted=%v)", m.name, key, vdesc(v), exists, deleted)
			break
		}
		col, val := e.randColumn(m)
		_, err := m.gUpdate(ctx, db, key, col, val)
		require.NoError(e.t, err)
		e.logf("G.Update %s %v %s=%q", m.name, key, col, fmt.Sprint(val))
	case 2:
		key := e.someKey(db, m)
		exists, deleted := e.state(db, m, key)
		p := m.newRow(nil)
		v := e.fill(m, p)
		_, err := m.gUpdates(ctx, db, key, p.Interface())
		require.NoError(e.t, err)
		if len(v) > 0 && visible(m, exists, deleted, false) {
			e.setRef(m, key, v)
		}
		e.logf("G.Updates(struct) %s %v %s (exists=%v deleted=%v)", m.name, key, vdesc(v), exists, deleted)
	default:
		key := e.someKey(db, m)
		affected := e.visibleOf(m, e.rowsWhere(db, m, outbox.Quote(m.keyCol)+" = ?", key), false)
		_, err := m.gDelete(ctx, db, key)
		require.NoError(e.t, err)
		e.removed(m, affected, false)
		e.logf("G.Delete %s %v (rows=%v)", m.name, key, affected)
	}
	return true
}

// rawInsert loads rows with raw SQL, bypassing gorm and the plugin: fresh
// keys (negative integers, or "raw…" strings), some soft-deleted. The
// sidecars only learn about them through a Rebuild.
func (e *modelEnv) rawInsert(db *gorm.DB, m *mt) {
	cols := []string{m.keyCol}
	cols = append(cols, m.textCols...)
	for _, c := range append(append([]colDesc{}, m.meta...), m.plain...) {
		cols = append(cols, c.col)
	}
	if m.soft {
		cols = append(cols, "deleted_at")
	}
	if m.name == "m_docs" {
		cols = append(cols, "updated_at")
	}
	n := 1 + e.r.IntN(4)
	var vals []string
	var args []any
	var keys []any
	seen := map[any]bool{}
	for range n {
		e.rawNext++
		var key any = -e.rawNext
		if !m.intKey {
			key = fmt.Sprintf("raw%04d", e.rawNext)
		}
		// Half of the time, a key of the gorm key space that has no row
		// now: it may have had one, with a vector, deleted since.
		if k := e.absentKey(db, m); k != nil && !seen[k] && e.r.IntN(2) == 0 {
			key = k
		}
		seen[key] = true
		keys = append(keys, key)
		ph := []string{"?"}
		args = append(args, key)
		// Raw rows may hold NULLs, which gorm never writes.
		for range m.textCols {
			ph = append(ph, "?")
			if e.r.IntN(8) == 0 {
				args = append(args, nil)
			} else {
				args = append(args, e.sentence())
			}
		}
		for _, c := range append(append([]colDesc{}, m.meta...), m.plain...) {
			ph = append(ph, "?")
			if e.r.IntN(8) == 0 {
				args = append(args, nil)
			} else {
				args = append(args, e.metaValue(c.kind))
			}
		}
		if m.soft {
			if e.r.IntN(4) == 0 {
				ph = append(ph, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
			} else {
				ph = append(ph, "NULL")
			}
		}
		if m.name == "m_docs" {
			ph = append(ph, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
		}
		vals = append(vals, "("+strings.Join(ph, ", ")+")")
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", m.name, strings.Join(cols, ", "), strings.Join(vals, ", "))
	e.ok(db.Exec(q, args...))
	e.dirty[m.name] = true
	e.logf("raw insert %s %v", m.name, keys)
}

// rawUpdateAndRebuild changes indexed columns with raw SQL, or deletes
// rows, and rebuilds the table at once, as the documentation says to.
func (e *modelEnv) rawUpdateAndRebuild() {
	m := e.pick(e.rawTables())
	rs := e.rowsWhere(e.db, m, "1 = 1")
	if len(rs) == 0 {
		return
	}
	key := pickOne(e.r, rs).key
	if e.r.IntN(3) == 0 {
		e.ok(e.db.Exec(fmt.Sprintf("DELETE FROM %s WHERE %s = ?", m.name, outbox.Quote(m.keyCol)), key))
		e.dropRef(m, key)
		e.logf("raw delete %s %v", m.name, key)
	} else {
		col, val := e.randColumn(m)
		e.ok(e.db.Exec(fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ?", m.name, outbox.Quote(col), outbox.Quote(m.keyCol)), val, key))
		e.logf("raw update %s %v %s=%q", m.name, key, col, fmt.Sprint(val))
	}
	e.logf("rebuild [%s]", m.name)
	require.NoError(e.t, e.ix.Rebuild(e.ctx, m.name))
	delete(e.dirty, m.name)
}

// opRawSQL writes with db.Exec, which the plugin never sees: the capture
// triggers record it. Raw SQL cannot set vectors: inserted rows have none,
// deleted rows lose theirs, updated rows keep theirs.
func (e *modelEnv) opRawSQL(db *gorm.DB, m *mt) bool {
	tbl, key := outbox.Quote(m.name), outbox.Quote(m.keyCol)
	switch e.r.IntN(3) {
	case 0:
		if len(m.textCols) == 0 {
			return false
		}
		where, args := e.randWhere(db, m)
		col, s := pickOne(e.r, m.textCols), e.sentence()
		e.ok(db.Exec("UPDATE "+tbl+" SET "+outbox.Quote(col)+" = ? WHERE "+where, append([]any{s}, args...)...))
		e.logf("raw UPDATE %s SET %s=%q WHERE %s %v", m.name, col, s, where, args)
	case 1:
		where, args := e.randWhere(db, m)
		affected := e.rowsWhere(db, m, where, args...)
		e.ok(db.Exec("DELETE FROM "+tbl+" WHERE "+where, args...))
		for _, r := range affected {
			e.dropRef(m, r.key)
		}
		e.logf("raw DELETE %s WHERE %s %v (rows=%v)", m.name, where, args, affected)
	default:
		// A copy of an existing row under a new key (every NOT NULL column
		// gets a value), inserted with INSERT … SELECT.
		src := e.someKey(db, m)
		nk := e.absentKey(db, m)
		if src == nil || nk == nil {
			return false
		}
		var cols []string
		for _, c := range m.columns(db) {
			if c != m.keyCol {
				cols = append(cols, outbox.Quote(c))
			}
		}
		list := strings.Join(cols, ", ")
		res := e.ok(db.Exec("INSERT INTO "+tbl+" ("+key+", "+list+") SELECT ?, "+list+" FROM "+tbl+" WHERE "+key+" = ?", nk, src))
		if res.RowsAffected == 1 {
			e.setRef(m, nk, nil)
		}
		e.logf("raw INSERT %s %v copied from %v (%d rows)", m.name, nk, src, res.RowsAffected)
	}
	return true
}

// opRandomWhere updates rows the database picks at random, with a vector:
// the plugin must not guess them from the WHERE. A unique marker in a text
// column tells the oracle afterwards which rows were hit.
func (e *modelEnv) opRandomWhere(db *gorm.DB, m *mt) bool {
	if m.vecField == "" || len(m.textCols) == 0 {
		return false
	}
	tbl, key := outbox.Quote(m.name), outbox.Quote(m.keyCol)
	col := pickOne(e.r, m.textCols)
	// Unique per operation: two of them in one step (one transaction) must
	// not share a marker, or the oracle would credit the second vector to
	// rows only the first one hit.
	e.markerN++
	marker := fmt.Sprintf("marker%d_%d", e.step, e.markerN)
	v := e.vector(m)
	var arg any = v
	if v == nil {
		arg = gormplugin.ClearVector
	}
	where := key + " IN (SELECT " + key + " FROM " + tbl + " ORDER BY random() LIMIT 3)"
	mp := map[string]any{col: marker, e.vecName(m): arg}
	e.putAux(m, mp, v, v == nil)
	e.ok(db.Model(m.newRow(nil).Interface()).Where(where).Updates(mp))
	hit := e.rowsWhere(db, m, outbox.Quote(col)+" = ?", marker)
	for _, r := range e.visibleOf(m, hit, false) {
		e.setRef(m, r.key, v)
	}
	e.logf("random WHERE %s %s=%s %s (rows=%v)", m.name, col, marker, vdesc(v), hit)
	return true
}

// opTableCase writes through db.Table with the table name in another case:
// SQLite's names are case-insensitive, and so is the capture.
func (e *modelEnv) opTableCase(db *gorm.DB, m *mt) bool {
	name := strings.ToUpper(m.name)
	if e.r.IntN(2) == 0 {
		name = strings.ToUpper(m.name[:1]) + m.name[1:]
	}
	if m.vecField == "" || e.r.IntN(2) == 0 {
		key := e.absentKey(db, m)
		if key == nil {
			return false
		}
		row := m.newRow(key)
		v := e.fill(m, row)
		e.ok(db.Table(name).Create(row.Interface()))
		k := m.keyOf(row)
		e.setRef(m, k, v)
		e.logf("Table(%s).Create %v %s", name, k, vdesc(v))
		return true
	}
	key := e.someKey(db, m)
	exists, deleted := e.state(db, m, key)
	v := e.vector(m)
	if v == nil {
		return false
	}
	e.ok(db.Table(name).Model(m.newRow(key).Interface()).Update(e.vecName(m), v))
	if m.auxField != "" {
		e.ok(db.Table(name).Model(m.newRow(key).Interface()).Update(e.auxName(m), m.aux(v)))
	}
	if visible(m, exists, deleted, false) {
		e.setRef(m, key, v)
	}
	e.logf("Table(%s).Update(vector) %v %s (exists=%v deleted=%v)", name, key, vdesc(v), exists, deleted)
	return true
}

// columns returns the source table's column names, as SQLite has them.
func (m *mt) columns(db *gorm.DB) []string {
	var cols []string
	if err := db.Raw("SELECT name FROM pragma_table_info(?)", m.name).Scan(&cols).Error; err != nil {
		panic(err)
	}
	return cols
}

// opRemigrate drops a model's sidecars (and with them its events, so its
// vectors) and migrates it again: the table has rows, so Migrate queues a
// backfill that the indexer works through while the writes go on.
func (e *modelEnv) opRemigrate(db *gorm.DB, m *mt) bool {
	if m.parent || m.name == "m_comments" {
		return false // keep the association's tables migrated together
	}
	model := reflect.New(m.typ).Interface()
	require.NoError(e.t, gormplugin.DropSidecar(db, model), "step %d", e.step)
	require.NoError(e.t, gormplugin.Migrate(db, model), "step %d", e.step)
	e.ref[m.name] = map[any][]float32{}
	e.logf("DropSidecar + Migrate %s (backfill queued)", m.name)
	return true
}
