// Package reliab holds what the reliability tests of tests/ share with the
// writer program they run as a subprocess: the indexed models, a random
// workload of gorm writes of every kind with a ledger of the vectors that
// committed, and the reference check that compares the sidecars with what
// the source rows and the ledger say they must hold.
package reliab

import (
	"gorm.io/gorm"

	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Dim is the vector dimension of the test models.
const Dim = 4

// Article has an integer key, soft deletes, a vector with a metadata column
// and external-content FTS over two columns.
type Article struct {
	ID        int64  `gorm:"primaryKey"`
	Title     string `fts5:""`
	Body      string `fts5:""`
	Cat       int64
	Views     int64             // not indexed: updating it alone records no event
	Embedding vecsink.Embedding `vec:"dim=4;metric=l2;metadata=cat"`
	DeletedAt gorm.DeletedAt
}

// Note has a text key, soft deletes, a cosine vector carried as JSON and
// in-table FTS.
type Note struct {
	ID        string            `gorm:"primaryKey"`
	Text      string            `fts5:"external=false"`
	Embedding vecsink.Embedding `vec:"dim=4;metric=cosine;encoding=json"`
	DeletedAt gorm.DeletedAt
}

// Memo has an integer key, hard deletes only, no vector and contentless FTS.
type Memo struct {
	ID   int64  `gorm:"primaryKey"`
	Text string `fts5:"contentless=true"`
}

// Models are the indexed models, for gormplugin.Migrate.
func Models() []any { return []any{&Article{}, &Note{}, &Memo{}} }

// LedgerDDL creates the ledger: one row per committed workload transaction,
// written in that transaction, holding the vector state it left for every
// key it touched (JSON). A row exists if and only if the transaction
// committed.
const LedgerDDL = `CREATE TABLE IF NOT EXISTS wr_ledger (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	writer TEXT NOT NULL,
	vecs TEXT NOT NULL
)`
