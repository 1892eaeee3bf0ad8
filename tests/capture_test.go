package tests

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Issue 12: capture is exact for every way a row changes. Each test writes
// through one path, drains, and compares the sidecars with what the source
// tables hold (vec0 rows, FTS5 hits, FTS5 integrity-check).

type capDoc struct {
	ID        uint
	Title     string `fts5:"tokenize=porter unicode61"`
	Body      string `fts5:""`
	Slug      string `gorm:"uniqueIndex"`
	Views     int
	Embedding vecsink.Embedding `vec:"dim=3;metric=l2"`
}

type capParent struct {
	ID   uint
	Name string
	Kids []capKid `gorm:"foreignKey:ParentID;constraint:OnDelete:CASCADE,OnUpdate:CASCADE"`
	Pets []capPet `gorm:"foreignKey:ParentID;constraint:OnDelete:SET NULL"`
}

type capKid struct {
	ID        uint
	ParentID  uint
	Text      string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=3;metric=l2"`
}

type capPet struct {
	ID        uint
	ParentID  *uint
	Name      string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=3;metric=l2;metadata=parent_id"`
}

// capEnv opens a database with foreign keys on, the plugin and the models.
func capEnv(t *testing.T) (*gorm.DB, *indexer.Indexer, string) {
	t.Helper()
	path := testdb.Path(t)
	dsn := gormplugin.DSN(path, gormplugin.WithForeignKeys())
	db := testdb.Open(t, dsn)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &capDoc{}, &capParent{}, &capKid{}, &capPet{}))
	ix, err := indexer.New(db)
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return db, ix, dsn
}

func drain(t *testing.T, ix *indexer.Indexer) {
	t.Helper()
	_, err := ix.Drain(context.Background())
	require.NoError(t, err)
}

// vec0Rows returns the vec0 sidecar's vectors by key.
func vec0Rows(t *testing.T, db *gorm.DB, table string) map[int64][]float32 {
	t.Helper()
	var rows []struct {
		Rowid int64
		V     string
	}
	require.NoError(t, db.Raw("SELECT rowid, vec_to_json(embedding) AS v FROM "+table).Scan(&rows).Error)
	out := map[int64][]float32{}
	for _, r := range rows {
		var v []float32
		require.NoError(t, json.Unmarshal([]byte(r.V), &v))
		out[r.Rowid] = v
	}
	return out
}

// ftsKeys returns the keys that the FTS5 sidecar matches for a term, and
// checks the index with integrity-check (rank 1 also compares external
// content with the source).
func ftsKeys(t *testing.T, db *gorm.DB, fts, term string) []int64 {
	t.Helper()
	require.NoError(t, db.Exec(fmt.Sprintf("INSERT INTO %s(%s, rank) VALUES ('integrity-check', 1)", fts, fts)).Error)
	var keys []int64
	require.NoError(t, db.Raw(fmt.Sprintf("SELECT rowid FROM %s WHERE %s MATCH ? ORDER BY rowid", fts, fts), term).Scan(&keys).Error)
	return keys
}

func ids(t *testing.T, db *gorm.DB, q string, args ...any) []int64 {
	t.Helper()
	var out []int64
	require.NoError(t, db.Raw(q, args...).Scan(&out).Error)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func keysOf(m map[int64][]float32) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Item 1: load, edit, Save (one row and a loaded slice) keeps the vector.
func TestCaptureSaveOfLoadedRowsKeepsVectors(t *testing.T) {
	t.Parallel()
	db, ix, _ := capEnv(t)
	require.NoError(t, db.Create(&[]capDoc{
		{Title: "alpha", Slug: "a", Embedding: vecsink.Embedding{1, 0, 0}},
		{Title: "beta", Slug: "b", Embedding: vecsink.Embedding{0, 1, 0}},
	}).Error)
	drain(t, ix)
	var d capDoc
	require.NoError(t, db.First(&d, 1).Error)
	require.Empty(t, d.Embedding, "vectors are not loaded back")
	d.Title = "gamma"
	require.NoError(t, db.Save(&d).Error)
	var all []capDoc
	require.NoError(t, db.Find(&all).Error)
	for i := range all {
		all[i].Body = "edited"
	}
	require.NoError(t, db.Save(&all).Error)
	drain(t, ix)
	require.Equal(t, map[int64][]float32{1: {1, 0, 0}, 2: {0, 1, 0}}, vec0Rows(t, db, "cap_docs_vec"))
	require.Equal(t, []int64{1}, ftsKeys(t, db, "cap_docs_fts", "gamma"))
	require.Equal(t, []int64{1, 2}, ftsKeys(t, db, "cap_docs_fts", "edited"))
	// Clearing takes ClearVector.
	require.NoError(t, db.Model(&capDoc{ID: 2}).Update("embedding", gormplugin.ClearVector).Error)
	drain(t, ix)
	require.Equal(t, map[int64][]float32{1: {1, 0, 0}}, vec0Rows(t, db, "cap_docs_vec"))
}

// Item 2: a WHERE that is not deterministic changes the rows the database
// picks, and exactly those are captured.
func TestCaptureNonDeterministicWhere(t *testing.T) {
	t.Parallel()
	db, ix, _ := capEnv(t)
	var docs []capDoc
	for i := range 40 {
		docs = append(docs, capDoc{Title: "old", Slug: fmt.Sprint(i), Embedding: vecsink.Embedding{float32(i), 0, 0}})
	}
	require.NoError(t, db.CreateInBatches(&docs, 7).Error)
	drain(t, ix)
	for range 5 {
		require.NoError(t, db.Model(&capDoc{}).Where("id IN (SELECT id FROM cap_docs ORDER BY random() LIMIT 5)").
			Updates(map[string]any{"title": "new", "embedding": vecsink.Embedding{9, 9, 9}}).Error)
		require.NoError(t, db.Where("id IN (SELECT id FROM cap_docs ORDER BY random() LIMIT 2)").Delete(&capDoc{}).Error)
	}
	drain(t, ix)
	live := ids(t, db, "SELECT id FROM cap_docs")
	require.Equal(t, live, keysOf(vec0Rows(t, db, "cap_docs_vec")), "every live row keeps a vector, deleted ones have none")
	require.Equal(t, ids(t, db, "SELECT id FROM cap_docs WHERE title = 'new'"), ftsKeys(t, db, "cap_docs_fts", "new"))
	require.Equal(t, ids(t, db, "SELECT id FROM cap_docs WHERE title = 'old'"), ftsKeys(t, db, "cap_docs_fts", "old"))
	vecs := vec0Rows(t, db, "cap_docs_vec")
	for _, k := range ids(t, db, "SELECT id FROM cap_docs WHERE title = 'new'") {
		require.Equal(t, []float32{9, 9, 9}, vecs[k], "key %d", k)
	}
}

// Item 3: rows SQLite changes by itself through foreign-key actions.
func TestCaptureForeignKeyActions(t *testing.T) {
	t.Parallel()
	db, ix, _ := capEnv(t)
	p := capParent{Name: "p", Kids: []capKid{{Text: "kid one", Embedding: vecsink.Embedding{1, 1, 1}}, {Text: "kid two", Embedding: vecsink.Embedding{2, 2, 2}}},
		Pets: []capPet{{Name: "rex", Embedding: vecsink.Embedding{3, 3, 3}}}}
	require.NoError(t, db.Create(&p).Error)
	drain(t, ix)
	require.Len(t, vec0Rows(t, db, "cap_kids_vec"), 2)
	var parent []int64
	require.NoError(t, db.Raw("SELECT parent_id FROM cap_pets_vec").Scan(&parent).Error)
	require.Equal(t, []int64{int64(p.ID)}, parent)

	require.NoError(t, db.Delete(&capParent{ID: p.ID}).Error)
	drain(t, ix)
	require.Empty(t, vec0Rows(t, db, "cap_kids_vec"), "cascaded deletes leave the sidecars")
	require.Empty(t, ftsKeys(t, db, "cap_kids_fts", "kid"))
	require.Equal(t, []int64{1}, ftsKeys(t, db, "cap_pets_fts", "rex"), "SET NULL keeps the row")
	require.NoError(t, db.Raw("SELECT parent_id FROM cap_pets_vec").Scan(&parent).Error)
	require.Equal(t, []int64{0}, parent, "the metadata column follows SET NULL (NULL is 0 in vec0)")
}

// Item 4: a DO NOTHING batch over new rows and duplicates gives each new
// row its own vector, and the structs their real keys.
func TestCaptureDoNothingBatch(t *testing.T) {
	t.Parallel()
	for _, cols := range [][]clause.Column{nil, {{Name: "slug"}}} {
		db, ix, _ := capEnv(t)
		require.NoError(t, db.Create(&capDoc{Title: "first", Slug: "dup", Embedding: vecsink.Embedding{7, 7, 7}}).Error)
		batch := []capDoc{
			{Title: "x", Slug: "n1", Embedding: vecsink.Embedding{1, 0, 0}},
			{Title: "y", Slug: "dup", Embedding: vecsink.Embedding{9, 9, 9}},
			{Title: "z", Slug: "n2", Embedding: vecsink.Embedding{0, 0, 1}},
		}
		require.NoError(t, db.Clauses(clause.OnConflict{Columns: cols, DoNothing: true}).Create(&batch).Error)
		n1 := ids(t, db, "SELECT id FROM cap_docs WHERE slug = 'n1'")
		n2 := ids(t, db, "SELECT id FROM cap_docs WHERE slug = 'n2'")
		require.Equal(t, []int64{int64(batch[0].ID)}, n1, "the structs get their real keys back")
		require.Equal(t, uint(0), batch[1].ID, "the skipped row has no key")
		require.Equal(t, []int64{int64(batch[2].ID)}, n2)
		drain(t, ix)
		require.Equal(t, map[int64][]float32{1: {7, 7, 7}, n1[0]: {1, 0, 0}, n2[0]: {0, 0, 1}}, vec0Rows(t, db, "cap_docs_vec"), "columns %v", cols)
	}
}

// Item 5: FirstOrCreate with Attrs or Assign carries the vector.
func TestCaptureFirstOrCreate(t *testing.T) {
	t.Parallel()
	db, ix, _ := capEnv(t)
	var a capDoc
	require.NoError(t, db.Where(capDoc{Slug: "a"}).Attrs(capDoc{Title: "attrs", Embedding: vecsink.Embedding{1, 2, 3}}).FirstOrCreate(&a).Error)
	var b capDoc
	require.NoError(t, db.Where(capDoc{Slug: "b"}).Assign(capDoc{Title: "assign", Embedding: vecsink.Embedding{4, 5, 6}}).FirstOrCreate(&b).Error)
	var b2 capDoc
	require.NoError(t, db.Where(capDoc{Slug: "b"}).Assign(map[string]any{"embedding": vecsink.Embedding{6, 5, 4}}).FirstOrCreate(&b2).Error)
	require.Equal(t, b.ID, b2.ID)
	drain(t, ix)
	require.Equal(t, map[int64][]float32{int64(a.ID): {1, 2, 3}, int64(b.ID): {6, 5, 4}}, vec0Rows(t, db, "cap_docs_vec"))
}

// Item 6: the table name in another case is the same table.
func TestCaptureTableNameCase(t *testing.T) {
	t.Parallel()
	db, ix, _ := capEnv(t)
	require.NoError(t, db.Table("CAP_DOCS").Create(&capDoc{Title: "upper", Slug: "u", Embedding: vecsink.Embedding{1, 1, 0}}).Error)
	require.NoError(t, db.Table("Cap_Docs").Create(&capDoc{Title: "mixed", Slug: "m", Embedding: vecsink.Embedding{0, 1, 1}}).Error)
	require.NoError(t, db.Table("CAP_DOCS").Where("slug = ?", "m").Update("title", "changed").Error)
	drain(t, ix)
	require.Equal(t, map[int64][]float32{1: {1, 1, 0}, 2: {0, 1, 1}}, vec0Rows(t, db, "cap_docs_vec"))
	require.Equal(t, []int64{2}, ftsKeys(t, db, "cap_docs_fts", "changed"))
}

// Item 7: raw SQL through gorm and through another connection that knows
// nothing of the plugin.
func TestCaptureRawSQL(t *testing.T) {
	t.Parallel()
	db, ix, dsn := capEnv(t)
	require.NoError(t, db.Create(&capDoc{Title: "kept", Slug: "k", Embedding: vecsink.Embedding{1, 0, 0}}).Error)
	require.NoError(t, db.Exec("INSERT INTO cap_docs (title, body, slug) VALUES ('raw insert', 'x', 'r1')").Error)
	other, err := sql.Open(engine.DriverName, dsn)
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Exec("UPDATE cap_docs SET title = 'raw update' WHERE slug = 'k'")
	require.NoError(t, err)
	_, err = other.Exec("INSERT INTO cap_docs (title, slug) VALUES ('gone', 'g')")
	require.NoError(t, err)
	_, err = other.Exec("DELETE FROM cap_docs WHERE slug = 'g'")
	require.NoError(t, err)
	_, err = other.Exec("REPLACE INTO cap_docs (id, title, slug) VALUES (10, 'replaced', 'r1')") // deletes row 2 (slug r1)
	require.NoError(t, err)
	drain(t, ix)
	require.Equal(t, []int64{1}, ftsKeys(t, db, "cap_docs_fts", "raw"))
	require.Equal(t, []int64{10}, ftsKeys(t, db, "cap_docs_fts", "replaced"))
	require.Empty(t, ftsKeys(t, db, "cap_docs_fts", "gone"))
	require.Equal(t, map[int64][]float32{1: {1, 0, 0}}, vec0Rows(t, db, "cap_docs_vec"), "raw SQL leaves vectors of the rows it does not replace")
	hits, err := ftssink.Search[capDoc](context.Background(), db, ftssink.Term("raw update"))
	require.NoError(t, err)
	require.Len(t, hits, 1)
}

// Item 8: Migrate of a table with rows queues their indexing; the indexer
// does it in bounded steps.
func TestCaptureBackfillOnMigrate(t *testing.T) {
	t.Parallel()
	path := legacyDocs(t, 2500)

	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &capDoc{}))
	var queued int64
	require.NoError(t, db.Raw("SELECT count(*) FROM oi_backfill").Scan(&queued).Error)
	require.EqualValues(t, 1, queued)
	require.NoError(t, db.Model(&capDoc{ID: 5}).Update("title", "legacy edited").Error) // a write while queued
	ix, err := indexer.New(db, indexer.WithBatchSize(500))
	require.NoError(t, err)
	defer ix.Close()
	drain(t, ix)
	require.Len(t, ftsKeys(t, db, "cap_docs_fts", "legacy"), 2500)
	require.Equal(t, []int64{5}, ftsKeys(t, db, "cap_docs_fts", "edited"))
	require.NoError(t, db.Raw("SELECT count(*) FROM oi_backfill").Scan(&queued).Error)
	require.Zero(t, queued)
}

// gorm's SQLite migrator recreates a table to alter a column, which drops
// its triggers: the plugin puts them back.
func TestCaptureTriggersSurviveAlterColumn(t *testing.T) {
	t.Parallel()
	db, ix, _ := capEnv(t)
	require.NoError(t, db.Migrator().AlterColumn(&capDoc{}, "Views"))
	require.NoError(t, db.Exec("INSERT INTO cap_docs (title, slug) VALUES ('after alter', 'a')").Error)
	drain(t, ix)
	require.Equal(t, []int64{1}, ftsKeys(t, db, "cap_docs_fts", "alter"))

	// A migration by another tool drops them behind the plugin's back: the
	// indexer puts them back once it has caught up (and logs that the
	// table needs a rebuild).
	require.NoError(t, db.Exec("DROP TRIGGER oi_cap_docs_ins").Error)
	drain(t, ix)
	var n int
	require.NoError(t, db.Raw("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'cap_docs'").Scan(&n).Error)
	require.Equal(t, 4, n)
	require.NoError(t, db.Exec("INSERT INTO cap_docs (title, slug) VALUES ('restored', 'b')").Error)
	drain(t, ix)
	require.Equal(t, []int64{2}, ftsKeys(t, db, "cap_docs_fts", "restored"))
}

// A backfill interrupted after some steps (its indexer died) continues from
// its recorded position: the next indexer queues the rest, and every row is
// indexed once.
func TestCaptureBackfillResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := legacyDocs(t, 2500)

	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &capDoc{}))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	spec, err := outbox.LoadSpec(ctx, sqlDB, "cap_docs")
	require.NoError(t, err)
	// The first indexer's two steps, then it is gone (nothing applied yet).
	for range 2 {
		n, done, err := outbox.BackfillStep(ctx, sqlDB, spec, 1000)
		require.NoError(t, err)
		require.False(t, done)
		require.EqualValues(t, 1000, n)
	}
	var after int64
	require.NoError(t, db.Raw("SELECT after FROM oi_backfill WHERE tbl = 'cap_docs'").Scan(&after).Error)
	require.EqualValues(t, 2000, after)

	ix, err := indexer.New(db)
	require.NoError(t, err)
	defer ix.Close()
	drain(t, ix)
	require.Len(t, ftsKeys(t, db, "cap_docs_fts", "legacy"), 2500) // integrity-check included
	var indexed int64
	require.NoError(t, db.Raw("SELECT count(*) FROM cap_docs_fts_docsize").Scan(&indexed).Error)
	require.EqualValues(t, 2500, indexed, "each row indexed once")
	require.NoError(t, db.Raw("SELECT count(*) FROM oi_backfill").Scan(&indexed).Error)
	require.Zero(t, indexed, "the backfill is finished")
}

// legacyDocs writes n rows into cap_docs of a fresh database without the
// plugin (an application before it adopted the library) and returns the
// database's path.
func legacyDocs(t *testing.T, n int) string {
	t.Helper()
	path := testdb.Path(t)
	plain, err := gorm.Open(engine.Dialector(engine.DSN(path)), &gorm.Config{Logger: logger.Default.LogMode(logger.Silent)})
	require.NoError(t, err)
	type capLegacy struct {
		ID    uint
		Title string
	}
	require.NoError(t, plain.Table("cap_docs").AutoMigrate(&capLegacy{}))
	rows := make([]capLegacy, n)
	for i := range rows {
		rows[i].Title = fmt.Sprintf("legacy %d", i)
	}
	require.NoError(t, plain.Table("cap_docs").CreateInBatches(rows, 500).Error)
	s, err := plain.DB()
	require.NoError(t, err)
	require.NoError(t, s.Close())
	return path
}
