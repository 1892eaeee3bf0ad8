package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/ncruces/go-sqlite3/gormlite"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/synth"
	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dim is the vector size of every workload.
const Dim = 384

// BodyWords is the length of a synthetic document body.
const BodyWords = 200

// Doc is one synthetic document.
type Doc struct {
	Title, Body string
	Vec         []float32
	VecBytes    []byte // Vec as little-endian float32
}

var docCache struct {
	sync.Mutex
	docs []Doc
}

// Docs returns n deterministic documents (seed 1): ~200-word bodies from a
// 5k-word Zipf vocabulary and random 384-d unit vectors. The first n of a
// larger set are the same documents.
func Docs(n int) []Doc {
	docCache.Lock()
	defer docCache.Unlock()
	if len(docCache.docs) < n {
		g := synth.New(1, synth.DefaultVocab)
		docs := make([]Doc, n)
		for i := range docs {
			d := Doc{Title: g.Title(), Body: g.Text(BodyWords), Vec: g.Vector(Dim)}
			d.VecBytes, _ = outbox.EncodeVector(d.Vec, Dim, outbox.EncodingBinary)
			docs[i] = d
		}
		docCache.docs = docs
	}
	return docCache.docs[:n]
}

// Open opens a database file in dir with the recommended DSN.
func Open(dir string) (*gorm.DB, error) {
	db, err := gorm.Open(gormlite.Open(engine.DSN(filepath.Join(dir, "bench.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("bench: open: %w", err)
	}
	return db, nil
}

// Close closes db's pool.
func Close(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		s.Close()
	}
}

// exec runs statements, stopping at the first error.
func exec(ctx context.Context, db *gorm.DB, stmts ...string) error {
	for _, q := range stmts {
		if err := db.WithContext(ctx).Exec(q).Error; err != nil {
			return fmt.Errorf("bench: %s: %w", q, err)
		}
	}
	return nil
}
