package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/synth"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// Ticket is a model of the test program that the binary has never seen: a
// text primary key (so in-table FTS5), two text fields, a metadata column,
// an 8-dimension l2 vector and soft delete. The binary learns all of it from
// the registry.
type Ticket struct {
	Code      string `gorm:"primaryKey"`
	Subject   string `fts5:""`
	Notes     string `fts5:""`
	Queue     string
	Embedding vecsink.Embedding `vec:"dim=8;metric=l2;metadata=queue"`
	DeletedAt gorm.DeletedAt
}

const ticketDim = 8

func ticketCode(i int) string { return fmt.Sprintf("t%05d", i) }

// ticketVec is ticket i's vector: distinct for every i, so that a KNN query
// with it finds ticket i at distance 0.
func ticketVec(i int) []float32 {
	v := make([]float32, ticketDim)
	v[0] = float32(i)
	for d := 1; d < ticketDim; d++ {
		v[d] = float32((i*(d+3))%97) + float32(d)/10
	}
	return v
}

// openTickets opens (creating) the database at path as the test program's
// application would: capture plugin installed, Ticket migrated.
func openTickets(t *testing.T, path string) *gorm.DB {
	t.Helper()
	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &Ticket{}))
	return db
}

// writeTickets creates tickets from..from+n-1 through gorm (one event each).
func writeTickets(t *testing.T, db *gorm.DB, from, n int) {
	t.Helper()
	g := synth.New(uint64(from), 0)
	batch := make([]Ticket, 0, n)
	for i := from; i < from+n; i++ {
		batch = append(batch, Ticket{
			Code:      ticketCode(i),
			Subject:   g.Title() + " " + ticketCode(i),
			Notes:     g.Text(12),
			Queue:     []string{"billing", "support"}[i%2],
			Embedding: ticketVec(i),
		})
	}
	require.NoError(t, db.CreateInBatches(batch, 500).Error)
}

// status runs `status --json` and decodes it.
func status(t *testing.T, dbPath string) statusJSON {
	t.Helper()
	r := run(t, nil, "status", "--db", dbPath, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var st statusJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	return st
}

// sidecarRows returns the entries of table's sidecar of kind ("vec0", "fts5").
func sidecarRows(t *testing.T, st statusJSON, table, kind string) int64 {
	t.Helper()
	for _, tb := range st.Tables {
		if tb.Table != table {
			continue
		}
		for _, s := range tb.Sidecars {
			if s.Kind == kind {
				require.True(t, s.Exists, "%s sidecar of %s missing", kind, table)
				return s.Rows
			}
		}
	}
	t.Fatalf("no %s sidecar for %s in %+v", kind, table, st)
	return 0
}
