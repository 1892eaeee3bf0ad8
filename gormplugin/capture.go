package gormplugin

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// normKey converts a key value (a struct field, a map value or a scanned
// column) to the event form: int64 or string. ok is false for nil and for
// zero integer keys (not yet assigned).
func normKey(v any) (key any, ok bool) {
	if v == nil {
		return nil, false
	}
	if val, isValuer := v.(driver.Valuer); isValuer {
		dv, err := val.Value()
		if err != nil || dv == nil {
			return nil, false
		}
		v = dv
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), rv.Int() != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := rv.Uint()
		if u > 1<<63-1 {
			return nil, false
		}
		return int64(u), u != 0
	case reflect.String:
		return rv.String(), true
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return string(rv.Bytes()), true
		}
	}
	return nil, false
}

// vectorOf converts a vector value from a struct field or a map to
// []float32.
func vectorOf(v any) ([]float32, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case vecsink.Embedding:
		return x, nil
	case []float32:
		return x, nil
	case *vecsink.Embedding:
		if x == nil {
			return nil, nil
		}
		return *x, nil
	case *[]float32:
		if x == nil {
			return nil, nil
		}
		return *x, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, nil
		}
		rv = rv.Elem()
	}
	if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Float32 {
		return rv.Convert(float32sType).Interface().([]float32), nil
	}
	return nil, fmt.Errorf("%w: a vector must be vecsink.Embedding or []float32, got %T", ErrInvalidVector, v)
}

// encodeVec validates and encodes a vector for an event.
func (m *model) encodeVec(v any) ([]byte, error) {
	f, err := vectorOf(v)
	if err != nil {
		return nil, fmt.Errorf("gormplugin: %s.%s: %w", m.spec.Source, m.vec.Name, err)
	}
	b, err := outbox.EncodeVector(f, m.spec.Vec.Dim, m.spec.Vec.Encoding)
	if err != nil {
		return nil, fmt.Errorf("gormplugin: %s.%s: %w", m.spec.Source, m.vec.Name, err)
	}
	return b, nil
}

// vecSelected reports whether Select/Omit lists let the vector through:
// explicit is true when the vector (or "*") was named in Select.
func (m *model) vecSelected(stmt *gorm.Statement) (selected, explicit bool) {
	for _, o := range stmt.Omits {
		if m.vecNames[o] || o == "*" {
			return false, false
		}
	}
	if len(stmt.Selects) == 0 {
		return true, false
	}
	for _, s := range stmt.Selects {
		if m.vecNames[s] || s == "*" {
			return true, true
		}
	}
	return false, false
}

// vecKeys returns the keys of a map that designates the vector, if any.
func (m *model) vecKeys(mp map[string]any) []string {
	var ks []string
	for k := range mp {
		if m.vecNames[k] {
			ks = append(ks, k)
		}
	}
	return ks
}

// preRow is one row read before a write: its key and the values of the
// extra columns asked for.
type preRow struct {
	key  any
	vals []any
}

// selectRows reads the key and cols of the rows matching where, on the
// statement's connection (the write's transaction).
func selectRows(db *gorm.DB, m *model, cols []string, where clause.Expression) ([]preRow, error) {
	stmt := db.Statement
	sel := &gorm.Statement{DB: db, Table: stmt.Table, Schema: stmt.Schema, Context: stmt.Context, Clauses: map[string]clause.Clause{}}
	sel.WriteString("SELECT ")
	sel.WriteQuoted(m.key.DBName)
	for _, c := range cols {
		sel.WriteByte(',')
		sel.WriteQuoted(c)
	}
	sel.WriteString(" FROM ")
	sel.WriteQuoted(stmt.Table)
	if where != nil {
		sel.WriteByte(' ')
		sel.Clauses["WHERE"] = clause.Clause{Name: "WHERE", Expression: where}
		sel.Build("WHERE")
	}
	return queryRows(db, m, sel.SQL.String(), sel.Vars, len(cols))
}

func queryRows(db *gorm.DB, m *model, q string, vars []any, ncols int) ([]preRow, error) {
	rows, err := db.Statement.ConnPool.QueryContext(db.Statement.Context, q, vars...)
	if err != nil {
		return nil, fmt.Errorf("gormplugin: resolve affected rows of %s: %w", m.spec.Source, err)
	}
	defer rows.Close()
	var out []preRow
	dest := make([]any, ncols+1)
	for rows.Next() {
		var key any
		vals := make([]any, ncols)
		dest[0] = &key
		for i := range vals {
			dest[i+1] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("gormplugin: resolve affected rows of %s: %w", m.spec.Source, err)
		}
		k, ok := normKey(key)
		if !ok {
			if k, ok = key.(int64); !ok { // a zero integer key is a valid row
				return nil, fmt.Errorf("gormplugin: %s: row with key %v of type %T", m.spec.Source, key, key)
			}
		}
		for i, v := range vals {
			if b, isBytes := v.([]byte); isBytes {
				vals[i] = string(b)
			}
		}
		out = append(out, preRow{key: k, vals: vals})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gormplugin: resolve affected rows of %s: %w", m.spec.Source, err)
	}
	return out, nil
}

// oldCols returns the FTS source columns whose before-images events carry
// (external content only), computed once by analyze. Callers must not
// modify it.
func (m *model) oldCols() []string { return m.old }

// whereOf returns the statement's WHERE expression, or nil.
func whereOf(stmt *gorm.Statement) clause.Expression {
	if c, ok := stmt.Clauses["WHERE"]; ok {
		if w, ok := c.Expression.(clause.Where); ok && len(w.Exprs) > 0 {
			return w
		}
	}
	return nil
}

// missingWhere mirrors gorm's checkMissingWhereConditions: gorm refuses the
// statement, so the plugin reads nothing.
func missingWhere(db *gorm.DB) bool {
	if db.AllowGlobalUpdate {
		return false
	}
	where, ok := db.Statement.Clauses["WHERE"]
	if ok {
		if _, soft := db.Statement.Clauses["soft_delete_enabled"]; soft {
			w, _ := where.Expression.(clause.Where)
			ok = len(w.Exprs) > 1
		}
	}
	return !ok
}

// quoteList quotes identifiers for SQL.
func quoteList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = outbox.Quote(c)
	}
	return strings.Join(q, ",")
}
