package tests

import (
	"context"
	"reflect"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
)

// The models of the model-based test. Together they cover integer and
// string keys, soft delete and not, the three FTS5 modes, vectors with the
// three metrics and both encodings (as vecsink.Embedding and as []float32
// with gorm:"-"), vec0 metadata columns of every type, and an association.

// MDoc: int64 key, external-content FTS over two columns, soft delete, a
// cosine vector with text and integer metadata, a has-many association.
type MDoc struct {
	ID        int64
	Title     string `fts5:""`
	Body      string `fts5:""`
	Lang      string
	Score     int64
	Views     int
	Embedding vecsink.Embedding `vec:"dim=8;metric=cosine;metadata=lang,score"`
	UpdatedAt time.Time
	DeletedAt gorm.DeletedAt
	Comments  []MComment `gorm:"foreignKey:DocID"`
}

// MComment: uint key, in-table FTS with a prefix index, no soft delete, an
// l2 vector held in a []float32 with gorm:"-".
type MComment struct {
	ID    uint
	DocID int64
	Text  string    `fts5:"external=false;prefix=2"`
	Vec   []float32 `gorm:"-" vec:"dim=4;metric=l2"`
}

// MNote: string key, contentless FTS, soft delete, a dot vector carried as
// JSON in the events, with a text metadata column.
type MNote struct {
	Slug      string `gorm:"primaryKey"`
	Text      string `fts5:"contentless=true"`
	Tag       string
	Embedding vecsink.Embedding `vec:"dim=8;metric=dot;encoding=json;metadata=tag"`
	DeletedAt gorm.DeletedAt
}

// MCard: string key, in-table FTS with a renamed column, no soft delete, an
// l2 vector.
type MCard struct {
	Code      string            `gorm:"primaryKey"`
	Title     string            `fts5:"column=heading"`
	Body      string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=8;metric=l2"`
}

// MPage: int64 key, contentless FTS with detail=column, soft delete, and a
// vector derived from Body by the indexer (from=): the test never writes it;
// the check expects the HashEmbedder vector of every row's current Body
// (none for a blank one), and of every 12-rune chunk of it (Chunks).
type MPage struct {
	ID        int64
	Body      string `fts5:"contentless=true;detail=column"`
	DeletedAt gorm.DeletedAt
	Emb       vecsink.Embedding `vec:"dim=8;metric=cosine;from=Body"`
	Chunks    vecsink.Embedding `vec:"dim=8;metric=l2;from=Body;chunk=12;overlap=3"`
}

// MPoint: int64 key, two vector fields (no FTS), soft delete, boolean and
// float metadata on the first. The second field (Aux, its own vec0 sidecar
// m_points_aux_vec, another dim and metric) is written by every op that
// writes the first, with the first's leading elements (see mt.aux), so that
// the reference of the first vector predicts both sidecars.
type MPoint struct {
	ID        int64
	Kind      bool
	Rating    float64
	Embedding vecsink.Embedding `vec:"dim=8;metric=cosine;metadata=kind,rating"`
	Aux       vecsink.Embedding `vec:"dim=3;metric=l2"`
	DeletedAt gorm.DeletedAt
}

var modelModels = []any{&MDoc{}, &MComment{}, &MNote{}, &MCard{}, &MPage{}, &MPoint{}}

// metaKind is how a random value of a plain column is drawn.
type metaKind int

const (
	kindLang metaKind = iota
	kindSmallInt
	kindTag
	kindBool
	kindRating
)

// derivedField is a vector the indexer derives from text: its vec0 table
// and column, from= columns, dim and chunking (chunk 0: one vector).
type derivedField struct {
	table, column  string
	from           []string
	dim            int
	chunk, overlap int
}

type colDesc struct {
	col, field string
	kind       metaKind
}

// mt describes one model for the test: enough to build rows, address
// columns and check its sidecars, plus closures over its Go type for the
// generics API.
type mt struct {
	name     string // source table
	typ      reflect.Type
	keyField string
	keyCol   string
	intKey   bool
	uintKey  bool
	soft     bool

	vecField string // "" if none
	vecCol   string // the name that designates the vector in maps, Select and DoUpdates
	dim      int
	metric   string
	vecTable string

	// Vectors derived from text by the indexer (from=); the test never
	// writes them.
	derived []derivedField

	// A second vector field, written together with the first with
	// aux(v): "" if none.
	auxField, auxCol, auxTable string
	auxDim                     int

	ftsTable  string // "" if none
	ftsMode   string
	ftsDetail string
	textCols  []string // FTS source columns, in FTS order
	textField []string
	ftsCols   []string // FTS column names

	meta   []colDesc // vec0 metadata columns
	plain  []colDesc // other random columns (not indexed)
	parent bool      // MDoc: has the Comments association

	gCreate  func(ctx context.Context, db *gorm.DB, row any) error
	gUpdate  func(ctx context.Context, db *gorm.DB, key any, col string, val any) (int, error)
	gUpdates func(ctx context.Context, db *gorm.DB, key any, row any) (int, error)
	gDelete  func(ctx context.Context, db *gorm.DB, key any) (int, error)
	search   func(ctx context.Context, db *gorm.DB, q ftssink.Query, includeDeleted bool) ([]any, error)
	knn      func(ctx context.Context, db *gorm.DB, q []float32, k int, includeDeleted bool) ([]any, []float64, error)
}

func generics[T any](m *mt) {
	m.gCreate = func(ctx context.Context, db *gorm.DB, row any) error {
		return gorm.G[T](db).Create(ctx, row.(*T))
	}
	m.gUpdate = func(ctx context.Context, db *gorm.DB, key any, col string, val any) (int, error) {
		return gorm.G[T](db).Where(outbox.Quote(m.keyCol)+" = ?", key).Update(ctx, col, val)
	}
	m.gUpdates = func(ctx context.Context, db *gorm.DB, key any, row any) (int, error) {
		return gorm.G[T](db).Where(outbox.Quote(m.keyCol)+" = ?", key).Updates(ctx, *row.(*T))
	}
	m.gDelete = func(ctx context.Context, db *gorm.DB, key any) (int, error) {
		return gorm.G[T](db).Where(outbox.Quote(m.keyCol)+" = ?", key).Delete(ctx)
	}
	m.search = func(ctx context.Context, db *gorm.DB, q ftssink.Query, includeDeleted bool) ([]any, error) {
		opts := []ftssink.Option{ftssink.WithLimit(100000)}
		if includeDeleted {
			opts = append(opts, ftssink.IncludeDeleted())
		}
		hits, err := ftssink.Search[T](ctx, db, q, opts...)
		if err != nil {
			return nil, err
		}
		keys := make([]any, len(hits))
		for i := range hits {
			keys[i] = m.keyOf(reflect.ValueOf(&hits[i].Model))
		}
		return keys, nil
	}
	m.knn = func(ctx context.Context, db *gorm.DB, q []float32, k int, includeDeleted bool) ([]any, []float64, error) {
		var opts []vecsink.Option
		if m.auxField != "" {
			opts = append(opts, vecsink.WithField(m.vecField))
		}
		if includeDeleted {
			opts = append(opts, vecsink.IncludeDeleted())
		}
		res, err := vecsink.KNN[T](ctx, db, q, k, opts...)
		if err != nil {
			return nil, nil, err
		}
		keys := make([]any, len(res))
		dist := make([]float64, len(res))
		for i := range res {
			keys[i] = m.keyOf(reflect.ValueOf(&res[i].Model))
			dist[i] = res[i].Distance
		}
		return keys, dist, nil
	}
}

func modelTables() []*mt {
	doc := &mt{
		name: "m_docs", typ: reflect.TypeFor[MDoc](), keyField: "ID", keyCol: "id", intKey: true, soft: true,
		vecField: "Embedding", vecCol: "embedding", dim: 8, metric: outbox.MetricCosine, vecTable: "m_docs_vec",
		ftsTable: "m_docs_fts", ftsMode: outbox.ModeExternal,
		textCols: []string{"title", "body"}, textField: []string{"Title", "Body"}, ftsCols: []string{"title", "body"},
		meta:   []colDesc{{"lang", "Lang", kindLang}, {"score", "Score", kindSmallInt}},
		plain:  []colDesc{{"views", "Views", kindSmallInt}},
		parent: true,
	}
	generics[MDoc](doc)
	comment := &mt{
		name: "m_comments", typ: reflect.TypeFor[MComment](), keyField: "ID", keyCol: "id", intKey: true, uintKey: true,
		vecField: "Vec", vecCol: "vec", dim: 4, metric: outbox.MetricL2, vecTable: "m_comments_vec",
		ftsTable: "m_comments_fts", ftsMode: outbox.ModeInTable,
		textCols: []string{"text"}, textField: []string{"Text"}, ftsCols: []string{"text"},
	}
	generics[MComment](comment)
	note := &mt{
		name: "m_notes", typ: reflect.TypeFor[MNote](), keyField: "Slug", keyCol: "slug", soft: true,
		vecField: "Embedding", vecCol: "embedding", dim: 8, metric: outbox.MetricDot, vecTable: "m_notes_vec",
		ftsTable: "m_notes_fts", ftsMode: outbox.ModeContentless,
		textCols: []string{"text"}, textField: []string{"Text"}, ftsCols: []string{"text"},
		meta: []colDesc{{"tag", "Tag", kindTag}},
	}
	generics[MNote](note)
	card := &mt{
		name: "m_cards", typ: reflect.TypeFor[MCard](), keyField: "Code", keyCol: "code",
		vecField: "Embedding", vecCol: "embedding", dim: 8, metric: outbox.MetricL2, vecTable: "m_cards_vec",
		ftsTable: "m_cards_fts", ftsMode: outbox.ModeInTable,
		textCols: []string{"title", "body"}, textField: []string{"Title", "Body"}, ftsCols: []string{"heading", "body"},
	}
	generics[MCard](card)
	page := &mt{
		name: "m_pages", typ: reflect.TypeFor[MPage](), keyField: "ID", keyCol: "id", intKey: true, soft: true,
		ftsTable: "m_pages_fts", ftsMode: outbox.ModeContentless, ftsDetail: "column",
		derived: []derivedField{
			{table: "m_pages_vec", column: "embedding", from: []string{"body"}, dim: 8},
			{table: "m_pages_chunks_vec", column: "chunks", from: []string{"body"}, dim: 8, chunk: 12, overlap: 3},
		},
		textCols: []string{"body"}, textField: []string{"Body"}, ftsCols: []string{"body"},
	}
	generics[MPage](page)
	point := &mt{
		name: "m_points", typ: reflect.TypeFor[MPoint](), keyField: "ID", keyCol: "id", intKey: true, soft: true,
		vecField: "Embedding", vecCol: "embedding", dim: 8, metric: outbox.MetricCosine, vecTable: "m_points_vec",
		auxField: "Aux", auxCol: "aux", auxTable: "m_points_aux_vec", auxDim: 3,
		meta: []colDesc{{"kind", "Kind", kindBool}, {"rating", "Rating", kindRating}},
	}
	generics[MPoint](point)
	return []*mt{doc, comment, note, card, page, point}
}

// newRow returns a *T with the key set (when key is not nil).
func (m *mt) newRow(key any) reflect.Value {
	p := reflect.New(m.typ)
	if key != nil {
		m.setKey(p.Elem(), key)
	}
	return p
}

func (m *mt) setKey(v reflect.Value, key any) {
	f := v.FieldByName(m.keyField)
	switch k := key.(type) {
	case int64:
		if m.uintKey {
			f.SetUint(uint64(k))
		} else {
			f.SetInt(k)
		}
	case string:
		f.SetString(k)
	default:
		panic("bad key type")
	}
}

// keyOf returns the key of a struct value in its canonical form.
func (m *mt) keyOf(v reflect.Value) any {
	v = reflect.Indirect(v)
	f := v.FieldByName(m.keyField)
	switch f.Kind() {
	case reflect.String:
		return f.String()
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		return int64(f.Uint())
	default:
		return f.Int()
	}
}

func (m *mt) setVec(v reflect.Value, vec []float32) {
	if m.vecField == "" {
		return
	}
	set := func(name string, vec []float32) {
		f := reflect.Indirect(v).FieldByName(name)
		if vec == nil {
			f.Set(reflect.Zero(f.Type()))
			return
		}
		f.Set(reflect.ValueOf(vec).Convert(f.Type()))
	}
	set(m.vecField, vec)
	if m.auxField != "" {
		set(m.auxField, m.aux(vec))
	}
}

// aux is the second vector field's value that goes with first vector v:
// its leading auxDim elements (nil for nil).
func (m *mt) aux(v []float32) []float32 {
	if v == nil || m.auxField == "" {
		return nil
	}
	return append([]float32(nil), v[:m.auxDim]...)
}

func (m *mt) vecOf(v reflect.Value) []float32 {
	if m.vecField == "" {
		return nil
	}
	f := reflect.Indirect(v).FieldByName(m.vecField)
	if f.Len() == 0 {
		return nil
	}
	return f.Convert(reflect.TypeFor[[]float32]()).Interface().([]float32)
}

// keyArg returns key in the Go type of the key field (what gorm gets in
// inline conditions).
func (m *mt) keyArg(key any) any {
	if m.uintKey {
		return uint(key.(int64))
	}
	return key
}

// sliceOf returns a pointer to a new []T holding rows (each a *T).
func (m *mt) sliceOf(rows []reflect.Value) any {
	s := reflect.New(reflect.SliceOf(m.typ))
	for _, r := range rows {
		s.Elem().Set(reflect.Append(s.Elem(), r.Elem()))
	}
	return s.Interface()
}

// keysOfSlice returns the keys of the rows of a *[]T.
func (m *mt) keysOfSlice(p any) []any {
	s := reflect.ValueOf(p).Elem()
	out := make([]any, s.Len())
	for i := range out {
		out[i] = m.keyOf(s.Index(i))
	}
	return out
}

func (m *mt) vecsOfSlice(p any) [][]float32 {
	s := reflect.ValueOf(p).Elem()
	out := make([][]float32, s.Len())
	for i := range out {
		out[i] = m.vecOf(s.Index(i))
	}
	return out
}
