package outbox_test

import (
	"context"
	"testing"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

func validSpec() *outbox.Spec {
	return &outbox.Spec{
		Version: outbox.SpecVersion, Source: "articles", Model: "Article", Key: "id", KeyType: outbox.KeyInteger, SoftDelete: "deleted_at",
		Vec: &outbox.VecSpec{Table: "articles_vec", Column: "embedding", Field: "Embedding", Dim: 4, Metric: outbox.MetricCosine, Encoding: outbox.EncodingBinary},
		FTS: &outbox.FTSSpec{Table: "articles_fts", Mode: outbox.ModeExternal, Tokenize: "porter unicode61", Columns: []outbox.FTSCol{{Name: "title", Source: "title"}, {Name: "body", Source: "body"}}},
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, validSpec().Validate())
	cases := map[string]func(*outbox.Spec){
		"bad source":            func(s *outbox.Spec) { s.Source = "a;drop" },
		"bad key type":          func(s *outbox.Spec) { s.KeyType = "float" },
		"no sidecar":            func(s *outbox.Spec) { s.Vec, s.FTS = nil, nil },
		"dim 0":                 func(s *outbox.Spec) { s.Vec.Dim = 0 },
		"metric":                func(s *outbox.Spec) { s.Vec.Metric = "foo" },
		"encoding":              func(s *outbox.Spec) { s.Vec.Encoding = "xml" },
		"vec table":             func(s *outbox.Spec) { s.Vec.Table = `x"y` },
		"fts mode":              func(s *outbox.Spec) { s.FTS.Mode = "other" },
		"detail":                func(s *outbox.Spec) { s.FTS.Detail = "all" },
		"external text key":     func(s *outbox.Spec) { s.KeyType = outbox.KeyText },
		"external renamed col":  func(s *outbox.Spec) { s.FTS.Columns[0].Name = "t" },
		"duplicate fts column":  func(s *outbox.Spec) { s.FTS.Columns[1] = s.FTS.Columns[0] },
		"reserved fts column":   func(s *outbox.Spec) { s.FTS.Columns[0] = outbox.FTSCol{Name: "deleted", Source: "deleted"} },
		"prefix out of range":   func(s *outbox.Spec) { s.FTS.Prefix = []int{0} },
		"metadata type":         func(s *outbox.Spec) { s.Vec.Metadata = []outbox.MetaCol{{Name: "lang", Type: "blob"}} },
		"metadata reserved":     func(s *outbox.Spec) { s.Vec.Metadata = []outbox.MetaCol{{Name: "deleted", Type: "integer"}} },
		"version":               func(s *outbox.Spec) { s.Version = 99 },
		"soft delete ident":     func(s *outbox.Spec) { s.SoftDelete = "x y" },
		"fts column identifier": func(s *outbox.Spec) { s.FTS.Columns[0] = outbox.FTSCol{Name: "a-b", Source: "a-b"} },
	}
	for name, mutate := range cases {
		s := validSpec()
		mutate(s)
		err := s.Validate()
		require.ErrorIs(t, err, outbox.ErrBadSpec, name)
		require.ErrorContains(t, err, s.Source, name)
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	_, err := outbox.LoadSpec(ctx, db, "articles")
	require.ErrorIs(t, err, outbox.ErrNotRegistered)

	s := validSpec()
	require.ErrorContains(t, outbox.SaveSpec(ctx, db, s), "no such table", "the capture triggers need the source table")
	_, err = db.Exec(`CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT, deleted_at DATETIME)`)
	require.NoError(t, err)
	require.NoError(t, outbox.SaveSpec(ctx, db, s))
	ok, err := outbox.TriggersPresent(ctx, db, "articles")
	require.NoError(t, err)
	require.True(t, ok)
	got, err := outbox.LoadSpec(ctx, db, "articles")
	require.NoError(t, err)
	require.Equal(t, s, got)
	require.True(t, got.Equal(s))

	changed := validSpec()
	changed.Vec.Metric = outbox.MetricL2
	require.False(t, changed.Equal(s))
	renamed := validSpec()
	renamed.Model, renamed.Vec.Field = "Other", "Vec"
	require.True(t, renamed.Equal(s), "informational names do not change the sidecars")

	_, err = db.Exec(`INSERT INTO oi_registry (source, spec, updated_at) VALUES ('broken', '{', 0)`)
	require.NoError(t, err)
	specs, errs, err := outbox.LoadSpecs(ctx, db)
	require.NoError(t, err)
	require.Len(t, specs, 1)
	require.ErrorIs(t, errs["broken"], outbox.ErrBadSpec)

	require.NoError(t, outbox.Append(ctx, db, []outbox.Event{{Table: "articles", Key: int64(1), Op: outbox.OpInsert}, {Table: "other", Key: int64(1), Op: outbox.OpInsert}}))
	require.NoError(t, outbox.DeleteSpec(ctx, db, "articles"))
	ok, err = outbox.TriggersPresent(ctx, db, "articles")
	require.NoError(t, err)
	require.False(t, ok, "DeleteSpec drops the capture triggers")
	_, err = outbox.LoadSpec(ctx, db, "articles")
	require.ErrorIs(t, err, outbox.ErrNotRegistered)
	evs, err := outbox.ReadEvents(ctx, db, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, "other", evs[0].Table)
}

func TestEnsureSchemaIdempotentAndVersioned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	require.NoError(t, outbox.EnsureSchema(ctx, db))
	_, err := db.Exec(`UPDATE oi_checkpoint SET position = 99 WHERE name = ?`, outbox.SchemaVersionKey)
	require.NoError(t, err)
	require.ErrorIs(t, outbox.EnsureSchema(ctx, db), outbox.ErrSchemaVersion)
}

// A version-1 database loses the (tbl, key, id) index of the log and gains
// oi_floor and oi_backfill; its events stay.
func TestEnsureSchemaMigratesVersion1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	require.NoError(t, outbox.EnsureSchema(ctx, db))
	for _, q := range []string{
		`DROP TABLE oi_floor`,
		`DROP TABLE oi_backfill`,
		`CREATE INDEX oi_events_key ON oi_events (tbl, key, id)`,
		`UPDATE oi_checkpoint SET position = 1 WHERE name = 'oi_schema_version'`,
		`INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES ('docs', 7, 1, '', NULL, 0)`,
	} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	require.NoError(t, outbox.EnsureSchema(ctx, db))
	count := func(q string) int64 {
		var n int64
		require.NoError(t, db.QueryRow(q).Scan(&n))
		return n
	}
	require.Zero(t, count(`SELECT count(*) FROM sqlite_schema WHERE name = 'oi_events_key'`))
	require.EqualValues(t, 1, count(`SELECT count(*) FROM sqlite_schema WHERE name = 'oi_floor'`))
	require.EqualValues(t, 1, count(`SELECT count(*) FROM sqlite_schema WHERE name = 'oi_backfill'`))
	require.EqualValues(t, 1, count(`SELECT count(*) FROM oi_events`))
	v, err := outbox.Checkpoint(ctx, db, outbox.SchemaVersionKey)
	require.NoError(t, err)
	require.EqualValues(t, outbox.SchemaVersion, v)
	require.EqualValues(t, 3, v)
}

// A version-2 database (capture in the gorm callbacks only) gets the capture
// triggers of every registered table when it is opened by this build.
func TestEnsureSchemaMigratesVersion2AddsTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	_, err := db.Exec(`CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT, deleted_at DATETIME)`)
	require.NoError(t, err)
	require.NoError(t, outbox.SaveSpec(ctx, db, validSpec()))
	require.NoError(t, outbox.DropTriggers(ctx, db, "articles"))
	require.NoError(t, outbox.SetCheckpoint(ctx, db, outbox.SchemaVersionKey, 2))
	require.NoError(t, outbox.EnsureSchema(ctx, db))
	ok, err := outbox.TriggersPresent(ctx, db, "articles")
	require.NoError(t, err)
	require.True(t, ok)
}

// A version-2 database gains the field column of oi_events and
// oi_deadletters; its events and dead letters stay, with field NULL (the
// first vector field), and events naming a field can be appended.
func TestEnsureSchemaMigratesVersion2AddsFieldColumn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	for _, q := range []string{
		`DROP TABLE IF EXISTS oi_events`,
		`DROP TABLE IF EXISTS oi_deadletters`,
		`CREATE TABLE oi_events (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key NOT NULL, op INTEGER NOT NULL, vec BLOB, old TEXT, at INTEGER NOT NULL)`,
		`CREATE TABLE oi_deadletters (id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, key NOT NULL, op INTEGER NOT NULL, vec BLOB, old TEXT, at INTEGER NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at INTEGER NOT NULL)`,
		`INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES ('docs', 7, 7, x'0000803f', NULL, 0)`,
		`INSERT INTO oi_deadletters VALUES (1, 'docs', 8, 2, NULL, NULL, 0, 'e', 1, 0)`,
	} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	require.NoError(t, outbox.EnsureSchema(ctx, db))
	require.NoError(t, outbox.SetCheckpoint(ctx, db, outbox.SchemaVersionKey, 2))
	require.NoError(t, outbox.EnsureSchema(ctx, db))
	require.NoError(t, outbox.Append(ctx, db, []outbox.Event{{Table: "docs", Key: int64(7), Op: outbox.OpVector, Vec: []byte{0, 0, 0, 64}, Field: "docs_b_vec"}}))
	evs, err := outbox.ReadEvents(ctx, db, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, "", evs[0].Field)
	require.Equal(t, "docs_b_vec", evs[1].Field)
	dl, err := outbox.ListDeadLetters(ctx, db, 0, 0)
	require.NoError(t, err)
	require.Len(t, dl, 1)
	require.Nil(t, dl[0].Field)
	// Only vector events name a field.
	err = outbox.Append(ctx, db, []outbox.Event{{Table: "docs", Key: int64(7), Op: outbox.OpUpdate, Field: "docs_b_vec"}})
	require.ErrorIs(t, err, outbox.ErrBadEvent)
}

func TestQuoteAndIdent(t *testing.T) {
	t.Parallel()
	require.True(t, outbox.ValidIdent("articles_fts"))
	require.False(t, outbox.ValidIdent("1abc"))
	require.False(t, outbox.ValidIdent("a;drop table x"))
	require.False(t, outbox.ValidIdent(""))
	require.Equal(t, `"a""b"`, outbox.Quote(`a"b`))
}
