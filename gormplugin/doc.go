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
// in the events.
//
//	Embedding vecsink.Embedding `vec:"dim=384;metric=cosine"`
//
// A model may have several vector fields, each with its own vec0 sidecar,
// dim, metric and metadata; vecsink.WithField picks the one a query
// searches. The first field in declaration order keeps the defaults below
// (and its vector rides on the capture trigger's event, as with one field);
// the others default to table <source>_<column>_vec and column = the
// field's column name (BodyEmb: posts_body_emb_vec, column body_emb), and
// their vectors are appended as vector events naming the field's vec0
// table. Names that designate a vector (Go name, column name, vec0 column)
// must not be shared by two fields.
//
//	TitleEmb vecsink.Embedding `vec:"dim=384;metric=cosine"`
//	BodyEmb  vecsink.Embedding `vec:"dim=768;metric=l2"`
//
// vec keys: dim=N (required, 1..8192); metric=l2|cosine|dot (default l2);
// encoding=binary|json (how events carry the vector, default binary);
// table=NAME (default <source>_vec); column=NAME (default embedding);
// metadata=col1,col2: source columns (column or field names) copied into
// vec0 metadata columns, so that KNN queries can filter on them. Their vec0
// type follows the Go type: string → text, integers → integer, floats →
// float, bool → boolean. Writes that change a metadata column are indexed
// changes. from=Field1,Field2 (field or column names of text fields): the
// vector is derived from that text by the indexer (indexer.WithEmbedder, or
// the binary's --embed-api flags); writes of those columns are indexed
// changes, and writing a non-empty vector or ClearVector to the field fails
// with ErrDerivedVector. chunk=N;overlap=M (with from=; characters, i.e.
// runes): one vector per chunk of the text, KNN ranks rows by their best
// chunk (vecsink.Result.Chunk); needs an integer key, l2 or cosine.
// embedder=NAME (with from=): the indexer's embedder registered under that
// name (indexer.WithNamedEmbedder) computes it; default WithEmbedder's.
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
// # Capture
//
// The database records the changes: Migrate gives every indexed source
// table four AFTER triggers (insert, update of the watched columns, key
// change, delete; see outbox.TriggerDDL) that append one event per changed
// row to oi_events in the statement that changes it. They see exactly the
// rows a statement changes, whoever issued it: gorm through any write path,
// db.Exec, another program or the sqlite3 shell, foreign-key actions
// (ON DELETE CASCADE / SET NULL, ON UPDATE CASCADE) and the rows a REPLACE
// conflict resolution deletes (with recursive_triggers on, as DSN sets it).
// A write and its events commit or roll back together, in db.Transaction,
// nested transactions and SavePoint/RollbackTo alike. Updates that touch
// none of the watched columns (FTS columns, soft-delete column, vec
// metadata columns, the key) record nothing and cost nothing extra.
//
// The plugin adds only what the database cannot know: the vector, which is
// not a column. It keeps the vector out of the SQL and, once the statement
// ran, puts it on the events the triggers wrote for the rows the statement
// really wrote (found in the log, not guessed from the WHERE): one extra
// statement for a single-row create, two for a batch (its insert events are
// replaced by ones that carry the vectors). An update that sets a
// vector names the key in its SET list (key = key), so that the trigger
// reports every row it matched. ON CONFLICT DO NOTHING batches are matched
// row by row (by key, or by conflict-target values for keys the database
// assigns) and gorm's shifted ids are given back to the structs; an upsert
// on another unique column finds the written key by its target values.
//
// Vectors are validated before any SQL runs: a length other than dim, NaN
// or Inf fails the gorm call with an error wrapping ErrInvalidVector and
// nothing is written. An empty vector leaves the stored one alone in every
// path — Save of a row loaded with First or Find (vectors are not read back
// into models), Updates, upserts — and a new row written without one has
// none. ClearVector clears: db.Model(&a).Update("embedding",
// gormplugin.ClearVector). Updating only the vector works
// (Update("embedding", v), Updates(&T{Embedding: v}), Save, batch updates,
// FirstOrCreate with Attrs or Assign).
//
// Under SkipDefaultTransaction the plugin opens a transaction around each
// write statement of an indexed model (and only of those), so that the write
// and its vectors stay atomic; CreateInBatches batches are then atomic one by
// one, as gorm's own are.
//
// A changed primary key is a delete of the old key and an insert of the new
// one; the vector does not follow it. Table names are case-insensitive, as
// in SQLite: db.Table("ARTICLES") writes the articles table and is
// captured. A model written to another table (db.Table("copy").Create(&a))
// records nothing, and its vector is kept out of the SQL. Vectors cannot be
// written with raw SQL (there is no column); rows inserted that way have
// none. Creating from []map[string]any with vectors needs the keys in the
// maps or a pointer to the slice.
//
// gorm's SQLite migrator recreates a table to alter it, which drops its
// triggers: Migrate re-creates them, and so does the plugin's migrator after
// AutoMigrate, AlterColumn, DropColumn, CreateConstraint and
// DropConstraint.
//
// # Migrate and spec changes
//
// Migrate auto-migrates the models, creates the outbox tables, the
// sidecars and the capture triggers, and stores each tagged model's
// outbox.Spec in oi_registry, in one transaction. A table that already has
// rows when it is first migrated is queued for backfill (oi_backfill): the
// indexer queues its rows' events in steps of 1000 and indexes them, so a
// large table never holds the write lock for long. Running it again changes nothing. When the tags no longer
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
