package gormplugin_test

import (
	"context"
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// tables lists the tables of the database whose name starts with prefix.
func tables(t *testing.T, db *gorm.DB, prefix string) []string {
	t.Helper()
	var names []string
	require.NoError(t, db.Raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ORDER BY name", prefix+"%").Scan(&names).Error)
	return names
}

// populate writes rows of every model and parks one dead letter per table.
func populate(t *testing.T, db *gorm.DB) {
	t.Helper()
	require.NoError(t, db.Create(&Article{Title: "a", Embedding: vecsink.Embedding{1, 2, 3}, Comments: []Comment{{Text: "c"}}}).Error)
	require.NoError(t, db.Create(&Note{Slug: "n", Vec: []float32{1, 2}}).Error)
	require.NoError(t, db.Exec("CREATE VIRTUAL TABLE IF NOT EXISTS x_vec USING vec0(embedding float[1])").Error)
	for _, tbl := range []string{"articles", "notes"} {
		require.NoError(t, db.Exec("INSERT INTO oi_deadletters (id, tbl, key, op, at, error, attempts, failed_at) VALUES ((SELECT coalesce(max(id),0)+1 FROM oi_deadletters), ?, 1, 1, 0, 'e', 1, 0)", tbl).Error)
	}
	require.NoError(t, db.Exec("INSERT INTO oi_keymap (tbl, key) VALUES ('notes', 'n')").Error)
}

func tblCount(t *testing.T, db *gorm.DB, table, tbl string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Raw("SELECT count(*) FROM "+table+" WHERE tbl = ?", tbl).Scan(&n).Error)
	return n
}

func registered(t *testing.T, db *gorm.DB, source string) bool {
	t.Helper()
	_, err := outbox.LoadSpec(context.Background(), db.Statement.ConnPool, source)
	if err != nil {
		require.ErrorIs(t, err, outbox.ErrNotRegistered)
		return false
	}
	return true
}

func TestDropTableCascade(t *testing.T) {
	t.Parallel()
	db := setup(t)
	populate(t, db)
	articleTables := tables(t, db, "articles")
	require.Contains(t, articleTables, "articles_vec_chunks", "vec0 shadow tables exist")
	require.Contains(t, articleTables, "articles_fts_data", "fts5 shadow tables exist")
	noteTables := tables(t, db, "notes")

	require.NoError(t, db.Migrator().DropTable(&Article{}))
	require.Empty(t, tables(t, db, "articles"), "source, sidecars and their shadow tables are gone")
	require.False(t, registered(t, db, "articles"))
	require.Zero(t, tblCount(t, db, "oi_events", "articles"))
	require.Zero(t, tblCount(t, db, "oi_deadletters", "articles"))
	// Other tables are untouched.
	require.Equal(t, noteTables, tables(t, db, "notes"))
	require.True(t, registered(t, db, "notes"))
	require.True(t, registered(t, db, "comments"))
	require.Equal(t, 1, tblCount(t, db, "oi_events", "notes"))
	require.Equal(t, 1, tblCount(t, db, "oi_events", "comments"))
	require.Equal(t, 1, tblCount(t, db, "oi_deadletters", "notes"))
	require.Equal(t, 1, tblCount(t, db, "oi_keymap", "notes"))

	// By table name.
	require.NoError(t, db.Migrator().DropTable("notes"))
	require.Empty(t, tables(t, db, "notes"))
	require.False(t, registered(t, db, "notes"))
	require.Zero(t, tblCount(t, db, "oi_events", "notes"))
	require.Zero(t, tblCount(t, db, "oi_keymap", "notes"))
	require.Equal(t, 1, tblCount(t, db, "oi_events", "comments"))
	require.Equal(t, []string{"x_vec", "x_vec_chunks", "x_vec_info", "x_vec_rowids", "x_vec_vector_chunks00"}, tables(t, db, "x_vec"))

	// Dropping untagged and missing tables still works.
	require.NoError(t, db.Migrator().DropTable(&Plain{}, "nothing_here"))
	require.Empty(t, tables(t, db, "plains"))

	// Migrating again brings everything back, and writes are captured again.
	require.NoError(t, gormplugin.Migrate(db, &Article{}))
	require.NoError(t, db.Create(&Article{Title: "again"}).Error)
	require.Equal(t, 1, tblCount(t, db, "oi_events", "articles"))
}

func TestDropTableIsAtomic(t *testing.T) {
	t.Parallel()
	db := setup(t)
	populate(t, db)
	before := tables(t, db, "")
	// Purging the events fails after the sidecars were dropped.
	require.NoError(t, db.Exec(`CREATE TRIGGER no_purge BEFORE DELETE ON oi_events WHEN OLD.tbl = 'articles' BEGIN SELECT RAISE(ABORT, 'no purge'); END`).Error)
	err := db.Migrator().DropTable(&Article{})
	require.ErrorContains(t, err, "no purge")
	require.Equal(t, before, tables(t, db, ""), "all or nothing")
	require.True(t, registered(t, db, "articles"))
	require.Equal(t, 1, tblCount(t, db, "oi_events", "articles"))
	require.Equal(t, 1, tblCount(t, db, "oi_deadletters", "articles"))
	// And the same for DropSidecar.
	require.ErrorContains(t, gormplugin.DropSidecar(db, &Article{}), "no purge")
	require.Equal(t, before, tables(t, db, ""))
	require.True(t, registered(t, db, "articles"))
	// Writes are still captured.
	require.NoError(t, db.Model(&Article{ID: 1}).Update("title", "b").Error)
	require.Equal(t, 2, tblCount(t, db, "oi_events", "articles"))
}

func TestDropSidecar(t *testing.T) {
	t.Parallel()
	db := setup(t)
	populate(t, db)
	noteTables := tables(t, db, "notes")

	require.NoError(t, gormplugin.DropSidecar(db, &Article{}))
	require.Equal(t, []string{"articles"}, tables(t, db, "articles"), "only the source is left")
	require.Equal(t, int64(1), count(t, db, "articles"))
	require.False(t, registered(t, db, "articles"))
	require.Zero(t, tblCount(t, db, "oi_events", "articles"))
	require.Zero(t, tblCount(t, db, "oi_deadletters", "articles"))
	require.Equal(t, noteTables, tables(t, db, "notes"))
	require.Equal(t, 1, tblCount(t, db, "oi_events", "notes"))
	require.True(t, registered(t, db, "comments"))

	// Idempotent; writes of the model record nothing until Migrate.
	require.NoError(t, gormplugin.DropSidecar(db, &Article{}))
	require.NoError(t, gormplugin.DropSidecar(db, "articles"))
	require.NoError(t, db.Model(&Article{ID: 1}).Update("title", "b").Error)
	require.Zero(t, tblCount(t, db, "oi_events", "articles"))

	// By name, and safe after the cascade.
	require.NoError(t, gormplugin.DropSidecar(db, "notes"))
	require.Equal(t, []string{"notes"}, tables(t, db, "notes"))
	require.NoError(t, db.Migrator().DropTable(&Note{}))
	require.NoError(t, gormplugin.DropSidecar(db, &Note{}))
	require.NoError(t, gormplugin.DropSidecar(db, "never_existed"))
	require.Empty(t, tables(t, db, "notes"))
	require.Equal(t, 1, tblCount(t, db, "oi_events", "comments"))
	require.Error(t, gormplugin.DropSidecar(db, "bad name;"))

	require.NoError(t, gormplugin.Migrate(db, &Article{}))
	require.Contains(t, tables(t, db, "articles"), "articles_vec")
	require.NoError(t, db.Model(&Article{ID: 1}).Update("title", "c").Error)
	require.Equal(t, 1, tblCount(t, db, "oi_events", "articles"))
}
