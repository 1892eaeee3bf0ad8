package bench

import (
	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/bench/limits"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// BlobDoc is the baseline model: Article without the plugin, its vector
// stored as a BLOB column of the source row (vecsink.Embedding encodes it
// in Value, as Article's vector is encoded into its event), and no outbox.
type BlobDoc struct {
	ID        uint `gorm:"primaryKey"`
	Title     string
	Body      string
	Views     int
	Embedding vecsink.Embedding
}

// PlainDoc is the source row of the synchronous design (vector in vec0).
type PlainDoc struct {
	ID    uint `gorm:"primaryKey"`
	Title string
	Body  string
}

// syncDDL creates the sidecars of the synchronous design: external-content
// FTS5 on plain_docs (porter) and a 384-d cosine vec0.
var syncDDL = limits.SidecarDDL

// GormBlobCreate is the capture baseline: n single-row gorm Creates of
// BlobDoc. It returns µs per row.
func GormBlobCreate(n int) Workload { return StepGormBlobCreate().Workload(n, "µs/row") }

// GormBlobCreateInBatches is the batch capture baseline: CreateInBatches(batch)
// of n BlobDocs. It returns µs per row.
func GormBlobCreateInBatches(n, batch int) Workload {
	return StepGormBlobCreateInBatches(batch).Workload(n, "µs/row")
}

// SyncCreate is the synchronous design: each single-row create writes the
// source row, the vec0 row and the FTS5 row in the user's transaction.
// It returns µs per row.
func SyncCreate(n int) Workload { return StepSyncCreate().Workload(n, "µs/row") }

// RawIndex is the physical limit of applying: direct inserts of n existing
// rows into vec0 and external-content FTS5, in transactions of batch rows,
// with statements prepared once per transaction. It returns rows per second.
func RawIndex(n, batch int) Workload { return rawIndex(n, batch, wallClock) }

// RawRebuild is the physical limit of a rebuild: FTS5's own 'rebuild' from
// the content table plus one-transaction vec0 inserts. It returns rows/s.
func RawRebuild(n int) Workload { return rawRebuild(n, wallClock) }
