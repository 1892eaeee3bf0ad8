package gormplugin_test

import (
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

// Models whose fts5 fields disagree on an option of the one FTS5 table they
// share.
type (
	ConflictExtContentless struct {
		ID    uint
		Title string `fts5:"external=true"`
		Body  string `fts5:"contentless=true"`
	}
	ConflictInTableContentless struct {
		ID    uint
		Title string `fts5:"external=false"`
		Body  string `fts5:"contentless=true"`
	}
	ConflictExternal struct {
		ID    uint
		Title string `fts5:"external=true"`
		Body  string `fts5:"external=false"`
	}
	ConflictContentless struct {
		ID    uint
		Title string `fts5:"contentless=false"`
		Body  string `fts5:"contentless=true"`
	}
	ConflictPrefix struct {
		ID    uint
		Title string `fts5:"prefix=2,3"`
		Body  string `fts5:"prefix=2,4"`
	}
	ConflictDetail struct {
		ID    uint
		Title string `fts5:"detail=full"`
		Body  string `fts5:"detail=none"`
	}
	ConflictTable struct {
		ID    uint
		Title string `fts5:"table=one_fts"`
		Body  string `fts5:"table=two_fts"`
	}
	// The conflict is with the first field, although the second one gave
	// another table-level key in between.
	ConflictThird struct {
		ID      uint
		Title   string `fts5:"tokenize=porter"`
		Body    string `fts5:"prefix=2"`
		Summary string `fts5:"tokenize=trigram"`
	}
	ConflictModeThird struct {
		ID      uint
		Title   string `fts5:"contentless=true"`
		Body    string `fts5:"prefix=2"`
		Summary string `fts5:"external=true;prefix=2"`
	}
	// external=true given on the second field of a model with a string key.
	ConflictExternalTextKey struct {
		ID    string `gorm:"primaryKey"`
		Title string `fts5:"tokenize=porter"`
		Body  string `fts5:"external=true"`
	}
)

func TestFTSTagConflictsAcrossFields(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	cases := []struct {
		model any
		want  []string // all must appear in the message: both fields, both values
	}{
		{&ConflictExtContentless{}, []string{"ConflictExtContentless", "field Body", "contentless=true", "field Title", "external=true"}},
		{&ConflictInTableContentless{}, []string{"ConflictInTableContentless", "field Body", "contentless=true", "field Title", "external=false"}},
		{&ConflictExternal{}, []string{"ConflictExternal", "field Body", `"external"`, `"false"`, `"true"`, "field Title"}},
		{&ConflictContentless{}, []string{"ConflictContentless", "field Body", `"contentless"`, `"true"`, `"false"`, "field Title"}},
		{&ConflictPrefix{}, []string{"ConflictPrefix", "field Body", `"prefix"`, `"2,4"`, `"2,3"`, "field Title"}},
		{&ConflictDetail{}, []string{"ConflictDetail", "field Body", `"detail"`, `"none"`, `"full"`, "field Title"}},
		{&ConflictTable{}, []string{"ConflictTable", "field Body", `"table"`, `"two_fts"`, `"one_fts"`, "field Title"}},
		{&ConflictThird{}, []string{"ConflictThird", "field Summary", `"tokenize"`, `"trigram"`, `"porter"`, "field Title"}},
		{&ConflictModeThird{}, []string{"ConflictModeThird", "field Summary", "external=true", "contentless=true", "field Title"}},
		{&ConflictExternalTextKey{}, []string{"ConflictExternalTextKey", "field Body", `"external"`, "integer primary key"}},
	}
	for _, c := range cases {
		err := gormplugin.Migrate(db, c.model)
		require.ErrorIs(t, err, gormplugin.ErrBadTag, "%T", c.model)
		for _, w := range c.want {
			require.Contains(t, err.Error(), w, "%T", c.model)
		}
		// Writes of the model fail with the same error.
		require.ErrorIs(t, db.Create(c.model).Error, gormplugin.ErrBadTag, "%T", c.model)
	}
	var n int
	require.NoError(t, db.Raw("SELECT count(*) FROM sqlite_master WHERE type = 'table'").Scan(&n).Error)
	require.Zero(t, n, "nothing was created")
}

// Models whose fts5 fields agree, however they spell it.
type (
	AgreePrefixOrder struct {
		ID    uint
		Title string `fts5:"prefix=2,3;tokenize=porter+unicode61"`
		Body  string `fts5:"prefix=3,2"`
	}
	AgreeTableCase struct {
		ID    uint
		Title string `fts5:"table=Notes_FTS;external=false"`
		Body  string `fts5:"table=notes_fts;detail=column"`
	}
	AgreeContentless struct {
		ID      uint
		Title   string `fts5:"contentless=true;external=false"`
		Body    string `fts5:"contentless=true"`
		Summary string `fts5:"detail=full"`
	}
	AgreeExternal struct {
		ID    uint
		Title string `fts5:"external=true;contentless=false"`
		Body  string `fts5:"external=true"`
	}
)

func TestFTSTagAgreementAcrossFields(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &AgreePrefixOrder{}, &AgreeTableCase{}, &AgreeContentless{}, &AgreeExternal{}))
	spec := func(src string) *outbox.Spec {
		var raw string
		require.NoError(t, db.Raw("SELECT spec FROM oi_registry WHERE source = ?", src).Scan(&raw).Error)
		s, err := outbox.ParseSpec(raw)
		require.NoError(t, err)
		return s
	}
	s := spec("agree_prefix_orders")
	require.Equal(t, []int{2, 3}, s.FTS.Prefix)
	require.Equal(t, "porter unicode61", s.FTS.Tokenize)
	require.Equal(t, outbox.ModeExternal, s.FTS.Mode)
	s = spec("agree_table_cases")
	require.Equal(t, "Notes_FTS", s.FTS.Table)
	require.Equal(t, outbox.ModeInTable, s.FTS.Mode)
	require.Equal(t, "column", s.FTS.Detail)
	s = spec("agree_contentlesses")
	require.Equal(t, outbox.ModeContentless, s.FTS.Mode)
	require.Len(t, s.FTS.Columns, 3)
	require.Equal(t, outbox.ModeExternal, spec("agree_externals").FTS.Mode)
}
