package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// BlobDoc is the baseline model: the same bytes as an indexed document, with
// the vector stored as a BLOB column of the source row, and no outbox.
type BlobDoc struct {
	ID        uint `gorm:"primaryKey"`
	Title     string
	Body      string
	Embedding []byte
}

// PlainDoc is the source row of the synchronous design (vector in vec0).
type PlainDoc struct {
	ID    uint `gorm:"primaryKey"`
	Title string
	Body  string
}

// syncDDL creates the sidecars of the synchronous design: external-content
// FTS5 on plain_docs (porter) and a 384-d cosine vec0.
var syncDDL = []string{
	`CREATE VIRTUAL TABLE plain_docs_fts USING fts5(title, body, content='plain_docs', content_rowid='id', tokenize='porter unicode61')`,
	fmt.Sprintf(`CREATE VIRTUAL TABLE plain_docs_vec USING vec0(embedding float[%d] distance_metric=cosine)`, Dim),
}

// GormBlobCreate is the capture baseline: n single-row gorm Creates of BlobDoc.
// It returns seconds per row.
func GormBlobCreate(n int) Workload {
	return Workload{Name: "gorm Create, vector as BLOB column", Unit: "µs/row", Run: func(ctx context.Context, dir string) (float64, error) {
		db, err := Open(dir)
		if err != nil {
			return 0, err
		}
		defer Close(db)
		if err := db.AutoMigrate(&BlobDoc{}); err != nil {
			return 0, err
		}
		docs := Docs(n)
		start := time.Now()
		for _, d := range docs {
			if err := db.WithContext(ctx).Create(&BlobDoc{Title: d.Title, Body: d.Body, Embedding: d.VecBytes}).Error; err != nil {
				return 0, err
			}
		}
		return Since(start) / float64(n) * 1e6, nil
	}}
}

// GormBlobCreateInBatches is the batch capture baseline: CreateInBatches(500)
// of n BlobDocs. It returns seconds per row.
func GormBlobCreateInBatches(n, batch int) Workload {
	return Workload{Name: fmt.Sprintf("gorm CreateInBatches(%d), BLOB column", batch), Unit: "µs/row", Run: func(ctx context.Context, dir string) (float64, error) {
		db, err := Open(dir)
		if err != nil {
			return 0, err
		}
		defer Close(db)
		if err := db.AutoMigrate(&BlobDoc{}); err != nil {
			return 0, err
		}
		rows := make([]BlobDoc, n)
		for i, d := range Docs(n) {
			rows[i] = BlobDoc{Title: d.Title, Body: d.Body, Embedding: d.VecBytes}
		}
		start := time.Now()
		if err := db.WithContext(ctx).CreateInBatches(rows, batch).Error; err != nil {
			return 0, err
		}
		return Since(start) / float64(n) * 1e6, nil
	}}
}

// SyncCreate is the synchronous design: each single-row create writes the
// source row, the vec0 row and the FTS5 row in the user's transaction.
// It returns seconds per row.
func SyncCreate(n int) Workload {
	return Workload{Name: "synchronous: row + vec0 + FTS5 in the tx", Unit: "µs/row", Run: func(ctx context.Context, dir string) (float64, error) {
		db, err := Open(dir)
		if err != nil {
			return 0, err
		}
		defer Close(db)
		if err := db.AutoMigrate(&PlainDoc{}); err != nil {
			return 0, err
		}
		if err := exec(ctx, db, syncDDL...); err != nil {
			return 0, err
		}
		start := time.Now()
		for _, d := range Docs(n) {
			err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				p := PlainDoc{Title: d.Title, Body: d.Body}
				if err := tx.Create(&p).Error; err != nil {
					return err
				}
				if err := tx.Exec(`INSERT INTO plain_docs_vec(rowid, embedding) VALUES (?, ?)`, p.ID, d.VecBytes).Error; err != nil {
					return err
				}
				return tx.Exec(`INSERT INTO plain_docs_fts(rowid, title, body) VALUES (?, ?, ?)`, p.ID, d.Title, d.Body).Error
			})
			if err != nil {
				return 0, err
			}
		}
		return Since(start) / float64(n) * 1e6, nil
	}}
}

// loadPlain bulk-loads n PlainDocs with raw multi-row inserts in one
// transaction (setup, not measured).
func loadPlain(ctx context.Context, db *gorm.DB, n int) error {
	if err := db.AutoMigrate(&PlainDoc{}); err != nil {
		return err
	}
	docs := Docs(n)
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		const per = 500
		for i := 0; i < n; i += per {
			end := min(i+per, n)
			var sb strings.Builder
			args := make([]any, 0, 3*(end-i))
			sb.WriteString("INSERT INTO plain_docs (id, title, body) VALUES ")
			for j := i; j < end; j++ {
				if j > i {
					sb.WriteByte(',')
				}
				sb.WriteString("(?,?,?)")
				args = append(args, j+1, docs[j].Title, docs[j].Body)
			}
			if err := tx.Exec(sb.String(), args...).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// RawIndex is the physical limit of applying: direct inserts of n existing
// rows into vec0 and external-content FTS5, in transactions of batch rows,
// with statements prepared once per transaction. It returns rows per second.
func RawIndex(n, batch int) Workload { return rawIndex(n, batch, wallClock) }

// RawRebuild is the physical limit of a rebuild: FTS5's own 'rebuild' from
// the content table plus one-transaction vec0 inserts. It returns rows/s.
func RawRebuild(n int) Workload { return rawRebuild(n, wallClock) }
