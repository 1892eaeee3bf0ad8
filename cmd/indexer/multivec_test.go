package main

import (
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

// Doc is a model of the test program with two vector fields: the binary
// learns both vec0 sidecars from the registry.
type Doc struct {
	ID       uint
	Title    string
	TitleEmb vecsink.Embedding `vec:"dim=2;metric=l2"`
	BodyEmb  vecsink.Embedding `vec:"dim=3;metric=cosine"`
}

// status, drain and rebuild handle one vec0 sidecar per vector field.
func TestStatusDrainRebuildSeveralVectorFields(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &Doc{}))
	require.NoError(t, db.Create(&[]Doc{
		{Title: "a", TitleEmb: vecsink.Embedding{1, 0}, BodyEmb: vecsink.Embedding{1, 0, 0}},
		{Title: "b", TitleEmb: vecsink.Embedding{0, 1}},
		{Title: "c", BodyEmb: vecsink.Embedding{0, 0, 1}},
	}).Error)

	r := run(t, nil, "drain", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	rows := func() map[string]int64 {
		st := status(t, path)
		out := map[string]int64{}
		for _, tb := range st.Tables {
			require.Equal(t, "docs", tb.Table)
			for _, s := range tb.Sidecars {
				require.Equal(t, "vec0", s.Kind)
				require.True(t, s.Exists, s.Name)
				out[s.Name] = s.Rows
			}
		}
		return out
	}
	want := map[string]int64{"docs_vec": 2, "docs_body_emb_vec": 2}
	require.Equal(t, want, rows())

	r = run(t, nil, "status", "--db", path)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "docs_vec (vec0) 2")
	require.Contains(t, r.stdout, "docs_body_emb_vec (vec0) 2")

	r = run(t, nil, "rebuild", "--db", path, "--table", "docs", "--log-every", "1ns")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, `op="rebuild docs"`)
	require.Contains(t, r.stderr, "sidecars=docs_vec__g1,docs_body_emb_vec__g1")

	r = run(t, nil, "rebuild", "--db", path, "--table", "docs", "--offline", "--log-every", "1ns")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, `op="rebuild docs_vec__g1"`)
	require.Contains(t, r.stderr, `op="rebuild docs_body_emb_vec__g1"`)
	require.Equal(t, want, rows(), "rebuilt from the log, each field from its own events")

	res, err := vecsink.KNN[Doc](t.Context(), db, []float32{0, 0, 1}, 1, vecsink.WithField("BodyEmb"))
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, "c", res[0].Model.Title)
}
