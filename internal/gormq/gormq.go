// Package gormq is the machinery shared by the typed queries (vecsink.KNN,
// ftssink.Search, hybrid.Search): it finds the registry spec of a gorm model
// and loads models by primary key, with one query, in a given order.
package gormq

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"reflect"
	"sync"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// Target is a gorm model type resolved against the registry.
type Target struct {
	Schema *schema.Schema // the model's gorm schema
	Table  string         // the source table (db.Table(...) wins over the model's name)
	Key    *schema.Field  // the primary key field
	Spec   *outbox.Spec   // the registry entry of Table
	Conn   outbox.DB      // the connection (or transaction) of db, for sidecar queries
}

// Resolve parses model (a pointer to a struct) with db's naming strategy and
// schema cache, and loads its spec from oi_registry. A table that was never
// migrated gives an error wrapping outbox.ErrNotRegistered; a model whose
// primary key disagrees with the registry one wraps outbox.ErrBadSpec.
func Resolve(ctx context.Context, db *gorm.DB, model any) (*Target, error) {
	if db == nil {
		return nil, fmt.Errorf("nil *gorm.DB")
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(model); err != nil {
		return nil, fmt.Errorf("parse model %T: %w", model, err)
	}
	sch := stmt.Schema
	table := sch.Table
	if db.Statement != nil && db.Statement.Table != "" {
		table = db.Statement.Table
	}
	if len(sch.PrimaryFields) != 1 {
		return nil, fmt.Errorf("%w: model %s (table %s) has %d primary key fields, want 1", outbox.ErrBadSpec, sch.Name, table, len(sch.PrimaryFields))
	}
	pk := sch.PrimaryFields[0]
	var conn outbox.DB
	if db.Statement != nil && db.Statement.ConnPool != nil {
		conn = db.Statement.ConnPool
	} else {
		return nil, fmt.Errorf("model %s: *gorm.DB has no connection", sch.Name)
	}
	spec, err := loadSpec(ctx, conn, table)
	if err != nil {
		return nil, fmt.Errorf("model %s (table %s) is not migrated: %w", sch.Name, table, err)
	}
	if spec.Key != pk.DBName {
		return nil, fmt.Errorf("%w: model %s (table %s) has primary key column %q, the registry says %q: run gormplugin.Migrate", outbox.ErrBadSpec, sch.Name, table, pk.DBName, spec.Key)
	}
	ft := pk.FieldType
	for ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	wantText := ft.Kind() == reflect.String
	if wantText != (spec.KeyType == outbox.KeyText) {
		return nil, fmt.Errorf("%w: model %s (table %s) has a %s primary key, the registry says %s: run gormplugin.Migrate", outbox.ErrBadSpec, sch.Name, table, pk.FieldType, spec.KeyType)
	}
	return &Target{Schema: sch, Table: table, Key: pk, Spec: spec, Conn: conn}, nil
}

// specCache maps registry JSON texts to their parsed, validated specs, so
// that a query reads its table's registry row (one indexed lookup, always:
// the registry can change at any time) but parses it only when the text
// differs from every text seen before. Cached specs are shared: read only.
var specCache struct {
	sync.RWMutex
	m map[string]*outbox.Spec
}

// maxCachedSpecs bounds specCache; it is emptied when full.
const maxCachedSpecs = 256

// loadSpec is outbox.LoadSpec through specCache. Any failure to read the
// row is left to outbox.LoadSpec, which classifies it.
func loadSpec(ctx context.Context, conn outbox.DB, table string) (*outbox.Spec, error) {
	var raw string
	if err := registryRow(ctx, conn, table).Scan(&raw); err != nil {
		// The prepared statement may have been closed between the lookup
		// and the query (registryStmts was full: another *sql.DB came):
		// the row is read plainly, and the spec still comes from the
		// cache. A second failure is left to outbox.LoadSpec.
		if err := conn.QueryRowContext(ctx, registryQuery, table).Scan(&raw); err != nil {
			return outbox.LoadSpec(ctx, conn, table)
		}
	}
	specCache.RLock()
	spec, ok := specCache.m[raw]
	specCache.RUnlock()
	if ok {
		return spec, nil
	}
	spec, err := outbox.ParseSpec(raw)
	if err != nil {
		return nil, err
	}
	specCache.Lock()
	if specCache.m == nil || len(specCache.m) >= maxCachedSpecs {
		specCache.m = map[string]*outbox.Spec{}
	}
	specCache.m[raw] = spec
	specCache.Unlock()
	return spec, nil
}

const registryQuery = `SELECT spec FROM oi_registry WHERE source = ?`

// registryStmts keeps the registry lookup prepared per *sql.DB, which saves
// SQLite's parse and plan of the statement on every query (about as long
// as running it). It is bounded: when full, every statement is closed and
// the map starts again; a query that took one just before may find it
// closed, and loadSpec then reads the row without it.
var registryStmts struct {
	sync.Mutex
	m map[*sql.DB]*sql.Stmt
}

// maxRegistryStmts bounds registryStmts.
const maxRegistryStmts = 16

// registryRow reads table's registry row on conn: through a prepared
// statement when conn is a *sql.DB, as a plain query otherwise (a
// transaction, gorm's prepared-statement pool) or when it cannot be
// prepared (no oi_registry yet).
func registryRow(ctx context.Context, conn outbox.DB, table string) *sql.Row {
	if db, ok := conn.(*sql.DB); ok {
		registryStmts.Lock()
		st := registryStmts.m[db]
		if st == nil {
			if len(registryStmts.m) >= maxRegistryStmts {
				for _, old := range registryStmts.m {
					old.Close()
				}
				registryStmts.m = nil
			}
			if p, err := db.PrepareContext(ctx, registryQuery); err == nil {
				if registryStmts.m == nil {
					registryStmts.m = map[*sql.DB]*sql.Stmt{}
				}
				registryStmts.m[db], st = p, p
			}
		}
		registryStmts.Unlock()
		if st != nil {
			return st.QueryRowContext(ctx, table)
		}
	}
	return conn.QueryRowContext(ctx, registryQuery, table)
}

// maxInVars bounds the keys of one IN list, below SQLite's variable limit.
const maxInVars = 30000

// Load loads the models whose primary key is in keys (int64 or string, as
// the sidecars return them) with one query (more only above 30000 keys) and
// returns them in the order of keys: out[i] is the model of keys[i], ok[i]
// is false when that row no longer exists (or db's conditions filter it).
// With unscoped, soft-deleted rows are loaded too.
func Load[T any](ctx context.Context, db *gorm.DB, t *Target, keys []any, unscoped bool) (out []T, ok []bool, err error) {
	out = make([]T, len(keys))
	ok = make([]bool, len(keys))
	if len(keys) == 0 {
		return out, ok, nil
	}
	pos := make(map[any]int, len(keys))
	for i, k := range keys {
		pos[k] = i
	}
	col := clause.Column{Table: clause.CurrentTable, Name: t.Key.DBName}
	for start := 0; start < len(keys); start += maxInVars {
		chunk := keys[start:min(start+maxInVars, len(keys))]
		tx := db.WithContext(ctx)
		if unscoped {
			tx = tx.Unscoped()
		}
		var rows []T
		if err := tx.Where(clause.IN{Column: col, Values: chunk}).Find(&rows).Error; err != nil {
			return nil, nil, fmt.Errorf("load %s models: %w", t.Schema.Name, err)
		}
		for _, m := range rows {
			k, err := KeyOf(ctx, t.Key, reflect.ValueOf(&m))
			if err != nil {
				return nil, nil, fmt.Errorf("load %s models: %w", t.Schema.Name, err)
			}
			if i, found := pos[k]; found {
				out[i], ok[i] = m, true
			}
		}
	}
	return out, ok, nil
}

// KeyOf returns the primary key of the model v (a struct, or pointers to
// one) normalised like the sidecars return it: int64 or string.
func KeyOf(ctx context.Context, pk *schema.Field, v reflect.Value) (any, error) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, fmt.Errorf("nil model")
		}
		v = v.Elem()
	}
	f := pk.ReflectValueOf(ctx, v)
	for f.Kind() == reflect.Pointer {
		if f.IsNil() {
			return nil, fmt.Errorf("primary key %s is nil", pk.Name)
		}
		f = f.Elem()
	}
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return f.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := f.Uint()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("primary key %s = %d overflows int64", pk.Name, u)
		}
		return int64(u), nil
	case reflect.String:
		return f.String(), nil
	default:
		return nil, fmt.Errorf("primary key %s has unsupported type %s", pk.Name, f.Type())
	}
}

// ScanKey normalises a key scanned from a sidecar (rowid, vec0 id column,
// oi_keymap key) to int64 or string.
func ScanKey(v any) (any, error) { return outbox.NormalizeKey(v) }
