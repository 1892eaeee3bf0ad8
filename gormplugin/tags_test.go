package gormplugin_test

import (
	"errors"
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

type DimZero struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=0"`
}
type DimABC struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=abc"`
}
type NoDim struct {
	ID uint
	E  vecsink.Embedding `vec:"metric=l2"`
}
type MetricFoo struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=3;metric=foo"`
}
type DetailAll struct {
	ID   uint
	Body string `fts5:"detail=all"`
}
type BadTable struct {
	ID   uint
	Body string `fts5:"table=x-drop"`
}
type Injection struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=3;table=x;drop table users"`
}
type UnknownKey struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=3;metrics=l2"`
}
type Composite struct {
	A    uint   `gorm:"primaryKey"`
	B    uint   `gorm:"primaryKey"`
	Body string `fts5:""`
}
type FloatKey struct {
	K    float64 `gorm:"primaryKey"`
	Body string  `fts5:""`
}
type Bare struct {
	ID uint
	E  []float32 `vec:"dim=3"`
}
type TwoVectorsOneColumn struct {
	ID uint
	A  vecsink.Embedding `vec:"dim=3;column=emb"`
	B  vecsink.Embedding `vec:"dim=3;column=emb"`
}
type TwoVectorsOneTable struct {
	ID uint
	A  vecsink.Embedding `vec:"dim=3"`
	B  vecsink.Embedding `vec:"dim=3;table=two_vectors_one_tables_vec"`
}
type Conflict struct {
	ID    uint
	Title string `fts5:"tokenize=porter"`
	Body  string `fts5:"tokenize=trigram"`
}
type ExternalText struct {
	Slug string `gorm:"primaryKey"`
	Body string `fts5:"external=true"`
}
type ContentlessExternal struct {
	ID   uint
	Body string `fts5:"contentless=true;external=true"`
}
type MetaUnknown struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=3;metadata=nope"`
}
type FTSNotText struct {
	ID    uint
	Count int `fts5:""`
}
type ReservedColumn struct {
	ID        uint
	Body      string `fts5:"column=deleted"`
	DeletedAt gorm.DeletedAt
}

type FromUnknown struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=3;from=Nope"`
}
type FromNotText struct {
	ID    uint
	Count int
	E     vecsink.Embedding `vec:"dim=3;from=Count"`
}
type FromTwice struct {
	ID    uint
	Title string
	E     vecsink.Embedding `vec:"dim=3;from=Title,title"`
}
type FromBadName struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=3;from=a-b"`
}

type ChunkNoFrom struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=3;chunk=100"`
}
type ChunkOverlap struct {
	ID   uint
	Body string
	E    vecsink.Embedding `vec:"dim=3;from=Body;chunk=10;overlap=10"`
}
type ChunkTextKey struct {
	Slug string `gorm:"primaryKey"`
	Body string
	E    vecsink.Embedding `vec:"dim=3;from=Body;chunk=10"`
}

type EmbedderNoFrom struct {
	ID uint
	E  vecsink.Embedding `vec:"dim=3;embedder=small"`
}

func TestTagErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	cases := []struct {
		model any
		want  []string // all must appear in the message
	}{
		{&DimZero{}, []string{"DimZero", "field E", `"dim"`, "between 1 and 8192"}},
		{&DimABC{}, []string{"DimABC", "field E", `"dim"`, `"abc"`, "not an integer"}},
		{&NoDim{}, []string{"NoDim", "field E", `"dim"`, "required"}},
		{&MetricFoo{}, []string{"MetricFoo", "field E", `"metric"`, `"foo"`}},
		{&DetailAll{}, []string{"DetailAll", "field Body", `"detail"`, `"all"`}},
		{&BadTable{}, []string{"BadTable", "field Body", `"table"`, `"x-drop"`, "plain SQL name"}},
		{&Injection{}, []string{"Injection", "field E", `"drop table users"`, "missing '=value'"}},
		{&UnknownKey{}, []string{"UnknownKey", "field E", `"metrics"`, "unknown key"}},
		{&Composite{}, []string{"Composite", "composite primary key", "A, B"}},
		{&FloatKey{}, []string{"FloatKey", "field K", "float64", "integer or string"}},
		{&Bare{}, []string{"Bare", "field E", "[]float32", `gorm:"-"`}},
		{&TwoVectorsOneColumn{}, []string{"TwoVectorsOneColumn", "field B", `"emb"`, "vector field A"}},
		{&TwoVectorsOneTable{}, []string{"TwoVectorsOneTable", "field B", `"table"`, `"two_vectors_one_tables_vec"`, "vector field A"}},
		{&Conflict{}, []string{"Conflict", "field Body", `"tokenize"`, "trigram", "porter", "Title"}},
		{&ExternalText{}, []string{"ExternalText", "field Body", `"external"`, "integer primary key"}},
		{&ContentlessExternal{}, []string{"ContentlessExternal", "field Body", `"contentless"`, "excludes external"}},
		{&MetaUnknown{}, []string{"MetaUnknown", "field E", `"metadata"`, `"nope"`}},
		{&FTSNotText{}, []string{"FTSNotText", "field Count", "int", "string"}},
		{&ReservedColumn{}, []string{"ReservedColumn", "field Body", `"column"`, "reserved"}},
		{&FromUnknown{}, []string{"FromUnknown", "field E", `"from"`, `"Nope"`, "not a field or column"}},
		{&FromNotText{}, []string{"FromNotText", "field E", `"from"`, "Count", "not text"}},
		{&FromTwice{}, []string{"FromTwice", "field E", `"from"`, `"title"`, "listed twice"}},
		{&FromBadName{}, []string{"FromBadName", "field E", `"from"`, `"a-b"`}},
		{&ChunkNoFrom{}, []string{"ChunkNoFrom", "field E", `"chunk"`, "from="}},
		{&ChunkOverlap{}, []string{"ChunkOverlap", "field E", `"overlap"`, "less than chunk=10"}},
		{&ChunkTextKey{}, []string{"ChunkTextKey", "field E", `"chunk"`, "integer primary key"}},
		{&EmbedderNoFrom{}, []string{"EmbedderNoFrom", "field E", `"embedder"`, "needs from="}},
	}
	for _, c := range cases {
		err := gormplugin.Migrate(db, c.model)
		require.Error(t, err, "%T", c.model)
		require.True(t, errors.Is(err, gormplugin.ErrBadTag), "%T: %v", c.model, err)
		for _, w := range c.want {
			require.Contains(t, err.Error(), w, "%T", c.model)
		}
	}
	// Nothing was created for any of them.
	var n int
	require.NoError(t, db.Raw("SELECT count(*) FROM sqlite_master WHERE type = 'table'").Scan(&n).Error)
	require.Zero(t, n)
	// Writes of a model with invalid tags fail with the same error instead of
	// going unindexed.
	require.NoError(t, db.Exec("CREATE TABLE metric_foos (id integer primary key)").Error)
	require.ErrorIs(t, db.Create(&MetricFoo{}).Error, gormplugin.ErrBadTag)
}

func TestUntaggedModelsAreUntouched(t *testing.T) {
	t.Parallel()
	db := setup(t)
	var log []string
	s := counted(db, &log)
	p := Plain{Name: "p"}
	require.NoError(t, s.Create(&p).Error)
	require.NoError(t, s.Model(&p).Update("name", "q").Error)
	require.NoError(t, s.Where("name = ?", "q").Delete(&Plain{}).Error)
	require.Len(t, log, 3, "one statement per write: %q", log)
	require.Empty(t, events(t, db))
}
