package indexer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

const benchDim = 384

func benchSpec() *outbox.Spec {
	return &outbox.Spec{Version: outbox.SpecVersion, Source: "arts", Key: "id", KeyType: outbox.KeyInteger,
		Vec: &outbox.VecSpec{Table: "arts_vec", Column: "embedding", Dim: benchDim, Metric: outbox.MetricCosine, Encoding: outbox.EncodingBinary},
		FTS: &outbox.FTSSpec{Table: "arts_fts", Mode: outbox.ModeInTable, Tokenize: "porter unicode61",
			Columns: []outbox.FTSCol{{Name: "body", Source: "body"}}}}
}

// benchData loads n source rows and their insert events.
func benchData(b *testing.B, n int) (*env, [][]byte, []string) {
	b.Helper()
	e := newEnv(b, outbox.ModeInTable, outbox.ModeInTable)
	e.exec(`CREATE TABLE arts (id INTEGER PRIMARY KEY, body TEXT)`)
	sp := benchSpec()
	require.NoError(b, outbox.SaveSpec(e.ctx, e.sql, sp))
	require.NoError(b, vecsink.Create(e.ctx, e.sql, sp))
	require.NoError(b, ftssink.Create(e.ctx, e.sql, sp))
	r := rand.New(rand.NewPCG(1, 1))
	vecs := make([][]byte, n)
	bodies := make([]string, n)
	tx, err := e.sql.Begin()
	require.NoError(b, err)
	var evs []outbox.Event
	for i := range n {
		w := make([]string, 200)
		for j := range w {
			w[j] = fmt.Sprintf("w%d", int(r.ExpFloat64()*300)%5000)
		}
		bodies[i] = strings.Join(w, " ")
		v := make([]float32, benchDim)
		for j := range v {
			v[j] = r.Float32()
		}
		vecs[i] = encDim(b, v)
		_, err := tx.Exec(`INSERT INTO arts (id, body) VALUES (?, ?)`, i+1, bodies[i])
		require.NoError(b, err)
		evs = append(evs, outbox.Event{Table: "arts", Key: int64(i + 1), Op: outbox.OpInsert, Vec: vecs[i]})
	}
	require.NoError(b, outbox.Append(context.Background(), tx, evs))
	require.NoError(b, tx.Commit())
	return e, vecs, bodies
}

// BenchmarkDrain applies n pending insert events (384-d vector + ~200-word
// porter FTS5 document each) into fresh sidecars; compare rows/s with
// BenchmarkRawInsert, the physical limit.
func BenchmarkDrain(b *testing.B) {
	const n = 5000
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		e, _, _ := benchData(b, n)
		ix, err := indexer.New(e.db, indexer.WithBatchSize(2000))
		require.NoError(b, err)
		b.StartTimer()
		got, err := ix.Drain(context.Background())
		require.NoError(b, err)
		require.Equal(b, n+0, got)
		b.StopTimer()
		ix.Close()
	}
	b.StartTimer()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRawInsert inserts the same rows straight into vec0 and FTS5 with
// prepared statements in one transaction.
func BenchmarkRawInsert(b *testing.B) {
	const n = 5000
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		e, vecs, bodies := benchData(b, n)
		b.StartTimer()
		tx, err := e.sql.Begin()
		require.NoError(b, err)
		v, err := tx.Prepare(`INSERT INTO arts_vec (rowid, embedding) VALUES (?, ?)`)
		require.NoError(b, err)
		f, err := tx.Prepare(`INSERT INTO arts_fts (rowid, body) VALUES (?, ?)`)
		require.NoError(b, err)
		for i := range n {
			_, err = v.Exec(i+1, vecs[i])
			require.NoError(b, err)
			_, err = f.Exec(i+1, bodies[i])
			require.NoError(b, err)
		}
		require.NoError(b, tx.Commit())
		b.StopTimer()
	}
	b.StartTimer()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRebuild rebuilds both sidecars of n rows from the source table
// and the retained log (compare with BenchmarkRawInsert).
func BenchmarkRebuild(b *testing.B) {
	const n = 5000
	b.StopTimer()
	e, _, _ := benchData(b, n)
	ix, err := indexer.New(e.db)
	require.NoError(b, err)
	defer ix.Close()
	_, err = ix.Drain(context.Background())
	require.NoError(b, err)
	for i := 0; i < b.N; i++ {
		b.StartTimer()
		require.NoError(b, ix.Rebuild(context.Background(), "arts"))
		b.StopTimer()
	}
	b.StartTimer()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
