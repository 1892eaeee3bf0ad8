package gormplugin

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

var (
	embeddingType = reflect.TypeOf(vecsink.Embedding(nil))
	float32sType  = reflect.TypeOf([]float32(nil))
	deletedAtType = reflect.TypeOf(gorm.DeletedAt{})
)

// model is what the plugin knows about one parsed gorm schema. Untagged
// models are cached too (indexed == false), so that the callbacks of an
// untagged model cost one map lookup.
type model struct {
	indexed bool
	err     error // tag error: every write of the model fails with it

	schema *schema.Schema
	spec   *outbox.Spec

	key    *schema.Field
	keyInt bool

	vec      *schema.Field   // the first vector field; nil: no vector
	vecs     []vecField      // every vector field, the first one first
	vecNames map[string]bool // names that designate a vector in maps and Select/Omit lists (all fields)

	soft *schema.Field // gorm.DeletedAt field or nil

	// dropped is set by DropSidecar and the DropTable cascade: the sidecars and
	// registry entry are gone, so writes record no events until Migrate runs
	// again in this process.
	dropped atomic.Bool
}

// vecField is one vec-tagged field of a model and its vec0 sidecar.
type vecField struct {
	f     *schema.Field
	spec  *outbox.VecSpec
	event string          // oi_events.field of its vectors ("" = NULL: the first field)
	names map[string]bool // names that designate it in maps and Select/Omit lists
}

// vecIndex returns the index in m.vecs of the vector field that name
// designates, or -1.
func (m *model) vecIndex(name string) int {
	for j := range m.vecs {
		if m.vecs[j].names[name] {
			return j
		}
	}
	return -1
}

// models caches model analyses by schema. Schemas are per gorm.DB cache
// store, so the same Go type opened on two databases is analysed twice.
type models struct {
	mu sync.Mutex
	m  sync.Map // *schema.Schema → *model
}

// get returns the cached analysis of s, analysing (and preparing the schema
// for the plugin) on first sight.
func (ms *models) get(s *schema.Schema) *model {
	if v, ok := ms.m.Load(s); ok {
		return v.(*model)
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if v, ok := ms.m.Load(s); ok {
		return v.(*model)
	}
	m := analyze(s)
	ms.m.Store(s, m)
	return m
}

// forTable returns an indexed model whose source table is name, if one has
// been analysed.
func (ms *models) forTable(name string) *model {
	var found *model
	ms.m.Range(func(_, v any) bool {
		if m := v.(*model); m.indexed && m.spec != nil && strings.EqualFold(m.spec.Source, name) {
			found = m
			return false
		}
		return true
	})
	return found
}

// parseModel parses a model value (pointer to struct, struct, or a slice of
// them) with the db's schema cache and naming strategy, and analyses it.
func (ms *models) parseModel(db *gorm.DB, value any) (*model, error) {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(value); err != nil {
		if terr := bareVectorError(value); terr != nil {
			return nil, terr
		}
		return nil, fmt.Errorf("gormplugin: parse model %T: %w", value, err)
	}
	m := ms.get(stmt.Schema)
	return m, nil
}

// bareVectorError explains gorm's "unsupported data type" for a vec-tagged
// []float32 field that gorm tried to map to a column.
func bareVectorError(value any) error {
	t := reflect.TypeOf(value)
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	return bareVectorInStruct(t, t.Name())
}

func bareVectorInStruct(t reflect.Type, modelName string) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if err := bareVectorInStruct(f.Type, modelName); err != nil {
				return err
			}
			continue
		}
		if _, ok := f.Tag.Lookup(vecTagName); !ok {
			continue
		}
		if f.Type != embeddingType && !strings.Contains(f.Tag.Get("gorm"), "-") {
			return fmt.Errorf("%w: model %s field %s: vec field of type %s must be vecsink.Embedding, or []float32 tagged `gorm:\"-\"`", ErrBadTag, modelName, f.Name, f.Type)
		}
	}
	return nil
}

// analyze derives the spec of a schema from its tags and prepares the
// schema: the vector field becomes a non-column field (not migrated, never
// read or written by gorm).
func analyze(s *schema.Schema) *model {
	var vecFields, ftsFields []*schema.Field
	for _, f := range s.Fields {
		if _, ok := f.Tag.Lookup(vecTagName); ok {
			vecFields = append(vecFields, f)
		}
		if _, ok := f.Tag.Lookup(ftsTagName); ok {
			ftsFields = append(ftsFields, f)
		}
	}
	if len(vecFields) == 0 && len(ftsFields) == 0 {
		return &model{schema: s}
	}
	m := &model{indexed: true, schema: s, vecNames: map[string]bool{}}
	// The vector field is never a column, even when the tags are invalid.
	colNames := make([]string, len(vecFields))
	for i, f := range vecFields {
		if f.DBName != "" {
			colNames[i] = f.DBName
		} else {
			colNames[i] = schema.NamingStrategy{}.ColumnName("", f.Name)
		}
		m.vecNames[colNames[i]] = true
		if f.FieldType == embeddingType || (f.FieldType.Kind() == reflect.Slice && f.FieldType.Elem().Kind() == reflect.Float32 && f.DBName == "") {
			hideField(s, f)
		}
	}
	m.err = m.build(vecFields, colNames, ftsFields)
	return m
}

// hideField turns f into a non-column field, like `gorm:"-:all"`, except
// that it stays readable: gorm copies readable fields of Attrs/Assign values
// into the model (FirstOrCreate), and there is no column to scan into it.
func hideField(s *schema.Schema, f *schema.Field) {
	f.Creatable, f.Updatable, f.Readable = false, false, true
	f.IgnoreMigration = true
	if f.DBName == "" {
		return
	}
	if s.FieldsByDBName[f.DBName] == f {
		delete(s.FieldsByDBName, f.DBName)
		s.DBNames = slices.DeleteFunc(s.DBNames, func(n string) bool { return n == f.DBName })
	}
	f.DBName = ""
}

func (m *model) build(vecFields []*schema.Field, colNames []string, ftsFields []*schema.Field) error {
	s := m.schema
	name := s.Name
	if name == "" {
		name = s.ModelType.String()
	}
	fail := func(field, format string, args ...any) error {
		if field == "" {
			return fmt.Errorf("%w: model %s: %s", ErrBadTag, name, fmt.Sprintf(format, args...))
		}
		return fmt.Errorf("%w: model %s field %s: %s", ErrBadTag, name, field, fmt.Sprintf(format, args...))
	}
	if !outbox.ValidIdent(s.Table) {
		return fail("", "table name %q is not a plain SQL name", s.Table)
	}

	// Primary key.
	switch len(s.PrimaryFields) {
	case 0:
		return fail("", "no primary key (an integer or string primary key is required)")
	case 1:
	default:
		var names []string
		for _, f := range s.PrimaryFields {
			names = append(names, f.Name)
		}
		return fail("", "composite primary key (%s) is not supported: use one integer or string key", strings.Join(names, ", "))
	}
	m.key = s.PrimaryFields[0]
	spec := &outbox.Spec{Version: outbox.SpecVersion, Source: s.Table, Model: name, Key: m.key.DBName}
	switch m.key.IndirectFieldType.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		spec.KeyType, m.keyInt = outbox.KeyInteger, true
	case reflect.String:
		spec.KeyType = outbox.KeyText
	default:
		return fail(m.key.Name, "primary key of type %s is not supported: use an integer or string key", m.key.FieldType)
	}
	if !outbox.ValidIdent(m.key.DBName) {
		return fail(m.key.Name, "primary key column %q is not a plain SQL name", m.key.DBName)
	}

	// Soft delete.
	for _, f := range s.Fields {
		if f.FieldType == deletedAtType && f.DBName != "" {
			m.soft = f
			spec.SoftDelete = f.DBName
			break
		}
	}
	if m.soft != nil {
		if !outbox.ValidIdent(m.soft.DBName) {
			return fail(m.soft.Name, "soft-delete column %q is not a plain SQL name", m.soft.DBName)
		}
	}

	// Vectors: one vec0 sidecar per field. The first field keeps the
	// defaults of a model with one vector (table <source>_vec, column
	// embedding); the others default to <source>_<column>_vec with column
	// the field's column name (BodyEmb: articles_body_emb_vec, body_emb).
	owner := map[string]string{} // name designating a vector → field
	for i, f := range vecFields {
		if f.FieldType != embeddingType && !(f.FieldType.Kind() == reflect.Slice && f.FieldType.Elem().Kind() == reflect.Float32) {
			return fail(f.Name, "vec tag on a field of type %s: use vecsink.Embedding or []float32 with `gorm:\"-\"`", f.FieldType)
		}
		if f.FieldType != embeddingType && f.TagSettings["-"] == "" {
			return fail(f.Name, "vec field of type %s must be vecsink.Embedding, or []float32 tagged `gorm:\"-\"`", f.FieldType)
		}
		t, err := parseVecTag(f.Tag.Get(vecTagName))
		if err != nil {
			return fail(f.Name, "%v", err)
		}
		v := &outbox.VecSpec{Table: t.Table, Column: t.Column, Field: f.Name, Dim: t.Dim, Metric: t.Metric, Encoding: t.Encoding}
		if v.Column == "" {
			v.Column = "embedding"
			if i > 0 {
				v.Column = colNames[i]
			}
		}
		if v.Table == "" {
			v.Table = s.Table + "_vec"
			if i > 0 {
				v.Table = s.Table + "_" + colNames[i] + "_vec"
			}
		}
		for _, c := range t.Metadata {
			mf := s.LookUpField(c)
			if mf == nil || mf.DBName == "" {
				return fail(f.Name, "vec tag key \"metadata\": %q is not a column of the model", c)
			}
			if mf == m.key || mf == m.soft || mf == f {
				return fail(f.Name, "vec tag key \"metadata\": %q is the key, the soft-delete column or the vector", c)
			}
			if mf.DBName == outbox.DeletedColumn || mf.DBName == v.Column || !outbox.ValidIdent(mf.DBName) {
				return fail(f.Name, "vec tag key \"metadata\": column %q clashes with a vec0 column or is not a plain SQL name", mf.DBName)
			}
			typ := metaType(mf.IndirectFieldType)
			if typ == "" {
				return fail(f.Name, "vec tag key \"metadata\": field %s of type %s cannot be a vec0 metadata column (use string, integer, float or bool)", mf.Name, mf.FieldType)
			}
			if slices.ContainsFunc(v.Metadata, func(x outbox.MetaCol) bool { return x.Name == mf.DBName }) {
				return fail(f.Name, "vec tag key \"metadata\": column %q listed twice", mf.DBName)
			}
			v.Metadata = append(v.Metadata, outbox.MetaCol{Name: mf.DBName, Type: typ})
		}
		for _, c := range t.From {
			mf := s.LookUpField(c)
			if mf == nil || mf.DBName == "" {
				return fail(f.Name, "vec tag key \"from\": %q is not a field or column of the model", c)
			}
			if mf.IndirectFieldType.Kind() != reflect.String && !(mf.IndirectFieldType.Kind() == reflect.Slice && mf.IndirectFieldType.Elem().Kind() == reflect.Uint8) {
				return fail(f.Name, "vec tag key \"from\": field %s of type %s is not text (use string or []byte)", mf.Name, mf.FieldType)
			}
			if !outbox.ValidIdent(mf.DBName) || slices.Contains(v.From, mf.DBName) {
				return fail(f.Name, "vec tag key \"from\": column %q is listed twice or is not a plain SQL name", mf.DBName)
			}
			v.From = append(v.From, mf.DBName)
		}
		v.Chunk, v.Overlap, v.Embedder = t.Chunk, t.Overlap, t.Embedder
		if v.Chunk > 0 && !m.keyInt {
			return fail(f.Name, "vec tag key \"chunk\": needs an integer primary key")
		}
		vf := vecField{f: f, spec: v, names: map[string]bool{f.Name: true, colNames[i]: true, v.Column: true}}
		for n := range vf.names {
			if prev, dup := owner[n]; dup {
				return fail(f.Name, "vec tag: name %q also designates vector field %s (give each vector field its own column=)", n, prev)
			}
			owner[n] = f.Name
			m.vecNames[n] = true
		}
		if i == 0 {
			m.vec = f
			spec.Vec = v
		} else {
			spec.MoreVecs = append(spec.MoreVecs, *v)
			vf.event = v.Table
		}
		m.vecs = append(m.vecs, vf)
	}
	tables := map[string]string{}
	for _, vf := range m.vecs {
		if prev, dup := tables[strings.ToLower(vf.spec.Table)]; dup {
			return fail(vf.f.Name, "vec tag key \"table\": %q is also the table of vector field %s", vf.spec.Table, prev)
		}
		tables[strings.ToLower(vf.spec.Table)] = vf.f.Name
	}
	for i := 1; i < len(m.vecs); i++ {
		// The spec's copy is the one the registry holds.
		m.vecs[i].spec = &spec.MoreVecs[i-1]
	}

	// Full text.
	if len(ftsFields) > 0 {
		fs := &outbox.FTSSpec{}
		merged := newFTSMerge()
		for _, f := range ftsFields {
			if f.DBName == "" || f.IgnoreMigration {
				return fail(f.Name, "fts5 tag on a field that is not a column of the source table")
			}
			if !ftsFieldType(f.IndirectFieldType) {
				return fail(f.Name, "fts5 tag on a field of type %s: use a string type", f.FieldType)
			}
			if f == m.key || f == m.soft {
				return fail(f.Name, "fts5 tag on the primary key or the soft-delete column")
			}
			t, err := parseFTSTag(f.Tag.Get(ftsTagName))
			if err != nil {
				return fail(f.Name, "%v", err)
			}
			if err := merged.add(f.Name, t); err != nil {
				return fail(f.Name, "%v", err)
			}
			col := t.Column
			if col == "" {
				col = f.DBName
			}
			if !outbox.ValidIdent(f.DBName) {
				return fail(f.Name, "column %q is not a plain SQL name", f.DBName)
			}
			fs.Columns = append(fs.Columns, outbox.FTSCol{Name: col, Source: f.DBName, Field: f.Name})
		}
		first := merged.tag
		fs.Table = first.Table
		if fs.Table == "" {
			fs.Table = s.Table + "_fts"
		}
		fs.Tokenize = first.Tokenize
		if fs.Tokenize == "" {
			fs.Tokenize = "unicode61"
		}
		fs.Prefix = first.Prefix
		fs.Detail = first.Detail
		_, extSet := first.set["external"]
		switch {
		case first.Contentless:
			fs.Mode = outbox.ModeContentless
		case extSet && !first.External:
			fs.Mode = outbox.ModeInTable
		case extSet && first.External && !m.keyInt:
			return fail(merged.origin["external"], "fts5 tag key \"external\": external content needs an integer primary key, %s is %s (use external=false or contentless=true)", m.key.Name, m.key.FieldType)
		case m.keyInt:
			fs.Mode = outbox.ModeExternal
		default:
			fs.Mode = outbox.ModeInTable // string keys: FTS5 external content needs an integer rowid
		}
		seen := map[string]string{}
		for _, c := range fs.Columns {
			if prev, dup := seen[c.Name]; dup {
				return fail(c.Field, "fts5 tag key \"column\": FTS5 column %q is also used by field %s", c.Name, prev)
			}
			if c.Name == outbox.DeletedColumn || (spec.SoftDelete != "" && c.Name == spec.SoftDelete) {
				return fail(c.Field, "fts5 tag key \"column\": %q is reserved for the soft-delete flag", c.Name)
			}
			if fs.Mode == outbox.ModeExternal && c.Name != c.Source {
				return fail(c.Field, "fts5 tag key \"column\": external content reads columns by name, so the FTS5 column must be %q (or use external=false)", c.Source)
			}
			seen[c.Name] = c.Field
		}
		spec.FTS = fs
	}
	if spec.Vec != nil && spec.FTS != nil && spec.Vec.Table == spec.FTS.Table {
		return fail(m.vec.Name, "vec and fts5 sidecars both named %q", spec.Vec.Table)
	}
	if err := spec.Validate(); err != nil {
		return fail("", "%v", err)
	}
	m.spec = spec
	return nil
}

// metaType maps a Go type to a vec0 metadata column type.
func metaType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "float"
	}
	return ""
}

// ftsFieldType reports whether an FTS source field holds text.
func ftsFieldType(t reflect.Type) bool {
	if t.Kind() == reflect.String {
		return true
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
		return true
	}
	return t.Kind() == reflect.Struct && t.NumField() == 2 && t.Field(0).Type.Kind() == reflect.String && t.Field(1).Type.Kind() == reflect.Bool // sql.NullString and look-alikes
}
