// Package gormplugin is the capture side of outboxindexer: a gorm plugin
// that records every write of a model tagged `vec:"…"` or `fts5:"…"` as
// change events in the outbox table (oi_events), in the same transaction as
// the write, plus Migrate, which creates the sidecar tables and the registry
// entry, and the DropTable cascade.
//
//	db.Use(gormplugin.New(gormplugin.WithNotify(worker.Wake)))
//	gormplugin.Migrate(db, &Article{})
//
// # Tags
//
// A vector field is a vecsink.Embedding, or a []float32 tagged `gorm:"-"`
// (a bare []float32 is rejected by Migrate). The source table never gets a
// column for it: the plugin hides the field from gorm and carries the vector
// in the events. At most one vector field per model.
//
//	Embedding vecsink.Embedding `vec:"dim=384;metric=cosine"`
//
// vec keys: dim=N (required, 1..8192); metric=l2|cosine|dot (default l2);
// encoding=binary|json (how events carry the vector, default binary);
// table=NAME (default <source>_vec); column=NAME (default embedding);
// metadata=col1,col2: source columns (column or field names) copied into
// vec0 metadata columns, so that KNN queries can filter on them. Their vec0
// type follows the Go type: string → text, integers → integer, floats →
// float, bool → boolean. Writes that change a metadata column are indexed
// changes.
//
// Text fields are tagged fts5; all tagged fields of a model share one FTS5
// table, in field order:
//
//	Title string `fts5:"tokenize=porter+unicode61"`
//	Body  string `fts5:""`
//
// fts5 keys: tokenize=NAME[+args] (default unicode61; '+' stands for a
// space in any value); prefix=N1,N2; detail=full|column|none; table=NAME
// (default <source>_fts); external=true|false; contentless=true; and, per
// field, column=NAME (default the field's column). Table-level keys given on
// several fields must agree (prefix lengths in any order, table names in any
// case), and so must the modes they ask for: contentless=true on one field
// and external=true or external=false on another is an ErrBadTag naming both
// fields; a field that gives none of them takes the others'. Modes: external content (the default for
// integer keys: FTS5 reads the text from the source table; events carry the
// indexed text's before-image so that stale tokens can be deleted),
// in-table (external=false: FTS5 keeps its own copy; the default for string
// primary keys, because external content needs an integer rowid, and
// external=true with a string key is an error), contentless (contentless=true,
// index only, exclusive with external=true).
//
// Keys are case-insensitive. Unknown keys, bad values and identifiers that
// are not plain SQL names are errors wrapping ErrBadTag that name the model,
// the field and the key. The primary key must be a single integer or string
// column. The soft-delete column is the model's gorm.DeletedAt field.
//
// # Events
//
// The plugin follows the event contract of docs/ARCHITECTURE.md: one event
// per affected row, appended with one multi-row INSERT per statement on the
// statement's own connection (db.Statement.ConnPool), so that the events
// commit or roll back with the write — in db.Transaction, nested
// transactions and SavePoint/RollbackTo alike. A create costs one extra
// statement; upserts read the rows they conflict with first; updates and
// deletes of indexed rows read the affected keys (and, for external-content
// FTS, the before-images) with the statement's own WHERE, in the same
// transaction, before the write. Updates that touch no indexed column (FTS
// columns, soft-delete column, vec metadata columns, the vector, the key)
// record nothing and cost nothing extra. Writes of untagged models are not
// touched.
//
// Vectors are validated before any SQL runs: a length other than dim, NaN
// or Inf fails the gorm call with an error wrapping ErrInvalidVector and
// nothing is written. A nil or empty vector means "no vector". Updating only
// the vector works (Update("embedding", v), Updates(&T{Embedding: v}),
// Save, batch updates): the vector is kept out of the SQL and carried by the
// event. A struct update that leaves the vector empty does not touch it;
// Select("Embedding") makes it explicit.
//
// Under SkipDefaultTransaction the plugin opens a transaction around each
// write statement of an indexed model (and only of those), so that the write
// and its events stay atomic; CreateInBatches batches are then atomic one by
// one, as gorm's own are.
//
// Changing the primary key of an indexed row is refused (ErrKeyChange).
// Writes to an indexed table without its model (db.Table("t") alone) are
// refused (ErrUnsupportedWrite) rather than left unindexed; writing a model
// to another table (db.Table("copy").Create(&a)) records nothing. Raw SQL
// (db.Exec) bypasses the plugin: run the indexer's Rebuild after bulk loads
// done that way. ON CONFLICT DO NOTHING is resolved against the conflict
// target columns (the primary key when none are given). Creating from
// []map[string]any needs the keys in the maps or a pointer to the slice.
//
// # Migrate and spec changes
//
// Migrate auto-migrates the models, creates the outbox tables and the
// sidecars, and stores each tagged model's outbox.Spec in oi_registry, in
// one transaction. Running it again changes nothing. When the tags no longer
// match the stored spec (a new metric, tokenizer, mode…), Migrate fails with
// ErrSpecChanged and a message that says what changed. To apply the change,
// call UpdateSpec: it records the new spec and recreates the changed
// sidecars, empty, in one transaction (the events, which hold the vectors,
// are kept); then run the indexer's Rebuild for the table (`indexer rebuild
// --table T`).
//
// # Dropping
//
// With the plugin installed, db.Migrator().DropTable(&T{}) or
// DropTable("t") drops the source table, its sidecars, its registry entry and
// every event of it (pending, retained, dead-lettered) in one transaction.
// DropSidecar drops only the sidecars, the registry entry and the events,
// keeping the source table; it is idempotent. Either way, writes of the model
// in this process record no events until Migrate runs again.
package gormplugin
