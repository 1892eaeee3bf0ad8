package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

func sqlDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := testdb.New(t).DB()
	require.NoError(t, err)
	require.NoError(t, outbox.EnsureSchema(context.Background(), db))
	return db
}

func TestAppendAndRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	vec, err := outbox.EncodeVector([]float32{1, 2, 3}, 3, outbox.EncodingBinary)
	require.NoError(t, err)
	at := time.Unix(1700000000, 123)
	in := []outbox.Event{
		{Table: "docs", Key: int64(1), Op: outbox.OpInsert, Vec: vec, At: at},
		{Table: "docs", Key: int64(1), Op: outbox.OpUpdate, Old: []any{"old title", nil}, At: at},
		{Table: "docs", Key: int64(2), Op: outbox.OpInsert, Vec: []byte{}, At: at},
		{Table: "tags", Key: "007", Op: outbox.OpDelete, At: at},
	}
	require.NoError(t, outbox.Append(ctx, db, in))
	out, err := outbox.ReadEvents(ctx, db, 0, 10)
	require.NoError(t, err)
	require.Len(t, out, 4)
	for i := range in {
		require.Equal(t, int64(i+1), out[i].ID)
		require.Equal(t, in[i].Table, out[i].Table)
		require.Equal(t, in[i].Key, out[i].Key)
		require.Equal(t, in[i].Op, out[i].Op)
		require.Equal(t, in[i].Old, out[i].Old)
		require.True(t, at.Equal(out[i].At))
	}
	require.Equal(t, vec, out[0].Vec)
	require.Nil(t, out[1].Vec, "NULL vec means: vector untouched")
	require.NotNil(t, out[2].Vec, "empty vec means: no vector")
	require.Empty(t, out[2].Vec)
	require.Equal(t, "007", out[3].Key, "text keys are never converted to numbers")

	after, err := outbox.ReadEvents(ctx, db, 2, 1)
	require.NoError(t, err)
	require.Len(t, after, 1)
	require.Equal(t, int64(3), after[0].ID)
}

func TestAppendChunksLargeBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	evs := make([]outbox.Event, 12000) // > one statement's variable budget
	for i := range evs {
		evs[i] = outbox.Event{Table: "docs", Key: int64(i), Op: outbox.OpInsert}
	}
	require.NoError(t, outbox.Append(ctx, db, evs))
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM oi_events`).Scan(&n))
	require.Equal(t, len(evs), n)
}

func TestAppendRejectsBadOp(t *testing.T) {
	t.Parallel()
	db := sqlDB(t)
	err := outbox.Append(context.Background(), db, []outbox.Event{{Table: "docs", Key: int64(1), Op: 99}})
	require.ErrorIs(t, err, outbox.ErrBadEvent)
	require.ErrorContains(t, err, "docs")
}

func TestIDsAreNeverReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	require.NoError(t, outbox.Append(ctx, db, []outbox.Event{{Table: "d", Key: int64(1), Op: outbox.OpInsert}, {Table: "d", Key: int64(2), Op: outbox.OpInsert}}))
	_, err := db.Exec(`DELETE FROM oi_events WHERE id = 2`)
	require.NoError(t, err)
	require.NoError(t, outbox.Append(ctx, db, []outbox.Event{{Table: "d", Key: int64(3), Op: outbox.OpInsert}}))
	var id int64
	require.NoError(t, db.QueryRow(`SELECT max(id) FROM oi_events`).Scan(&id))
	require.Equal(t, int64(3), id, "AUTOINCREMENT must not hand out the deleted max id again")
}

func TestMalformedRowsAreErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqlDB(t)
	_, err := db.Exec(`INSERT INTO oi_events (tbl, key, op, old, at) VALUES ('d', 1, 1, '{not json', 0)`)
	require.NoError(t, err)
	_, err = outbox.ReadEvents(ctx, db, 0, 10)
	require.ErrorIs(t, err, outbox.ErrBadEvent)
}

func TestEncodeVector(t *testing.T) {
	t.Parallel()
	b, err := outbox.EncodeVector([]float32{1.5, -2}, 2, outbox.EncodingBinary)
	require.NoError(t, err)
	require.Len(t, b, 8)
	v, err := outbox.DecodeVector(b)
	require.NoError(t, err)
	require.Equal(t, []float32{1.5, -2}, v)

	j, err := outbox.EncodeVector([]float32{1.5, -2}, 2, outbox.EncodingJSON)
	require.NoError(t, err)
	require.Equal(t, "[1.5,-2]", string(j))
	v, err = outbox.DecodeVector(j)
	require.NoError(t, err)
	require.Equal(t, []float32{1.5, -2}, v)

	e, err := outbox.EncodeVector(nil, 3, outbox.EncodingBinary)
	require.NoError(t, err)
	require.NotNil(t, e)
	require.Empty(t, e)

	for _, bad := range [][]float32{{1, 2}, {1, float32(math.NaN()), 3}, {float32(math.Inf(-1)), 0, 0}} {
		_, err := outbox.EncodeVector(bad, 3, outbox.EncodingBinary)
		require.ErrorIs(t, err, outbox.ErrBadVector)
	}
	_, err = outbox.DecodeVector([]byte{1, 2, 3})
	require.ErrorIs(t, err, outbox.ErrBadVector)
}

func FuzzDecodeVector(f *testing.F) {
	f.Add([]byte("[1,2,3]"))
	f.Add([]byte{0, 0, 128, 63})
	f.Add([]byte("[1,"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := outbox.DecodeVector(b)
		if err != nil {
			return
		}
		if len(b) > 0 && b[0] != '[' {
			require.Len(t, v, len(b)/4)
		}
	})
}

func FuzzDecodeOld(f *testing.F) {
	f.Add(`["a", null, 3]`)
	f.Add(`[`)
	f.Add(`{"x":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = outbox.DecodeOld(&s) // must never panic
	})
}

func TestNormalizeKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[any]any{int(3): int64(3), uint(4): int64(4), int32(5): int64(5), "x": "x", uint8(7): int64(7)} {
		got, err := outbox.NormalizeKey(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := outbox.NormalizeKey(uint64(math.MaxUint64))
	require.Error(t, err)
	_, err = outbox.NormalizeKey(nil)
	require.Error(t, err)
	_, err = outbox.NormalizeKey(1.5)
	require.Error(t, err)
}

// Chunk lists round-trip, and any byte string either decodes to chunks of
// the right size or fails with ErrBadVector, never panics.
func FuzzDecodeChunks(f *testing.F) {
	good, err := outbox.EncodeChunks([]outbox.ChunkVector{{Start: 0, End: 5, Vec: []float32{1, 2}}, {Start: 3, End: 9, Vec: []float32{0, -1}}}, 2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, 2)
	f.Add([]byte("OIC1\x00\x00\x00\x00"), 2)
	f.Add([]byte("[1,2]"), 2)
	f.Fuzz(func(t *testing.T, b []byte, dim int) {
		if dim < 1 || dim > 64 {
			return
		}
		chunks, err := outbox.DecodeChunks(b, dim)
		if err != nil {
			if !errors.Is(err, outbox.ErrBadVector) {
				t.Fatalf("error %v is not ErrBadVector", err)
			}
			return
		}
		if len(chunks) < 1 || len(chunks) > outbox.MaxChunks {
			t.Fatalf("%d chunks", len(chunks))
		}
		for _, c := range chunks {
			if len(c.Vec) != 4*dim {
				t.Fatalf("chunk vector of %d bytes for dim %d", len(c.Vec), dim)
			}
		}
	})
}

func TestChunkRowIDAndEncoding(t *testing.T) {
	t.Parallel()
	id, err := outbox.ChunkRowID(-3, 5)
	require.NoError(t, err)
	require.Equal(t, int64(-3*outbox.MaxChunks+5), id)
	_, err = outbox.ChunkRowID(outbox.MaxChunkKey, 0)
	require.ErrorIs(t, err, outbox.ErrBadVector)
	_, err = outbox.ChunkRowID(1, outbox.MaxChunks)
	require.ErrorIs(t, err, outbox.ErrBadVector)
	_, err = outbox.EncodeChunks([]outbox.ChunkVector{{Start: 0, End: 1, Vec: []float32{1}}}, 2)
	require.ErrorIs(t, err, outbox.ErrBadVector, "wrong dimension")
	_, err = outbox.EncodeChunks(nil, 2)
	require.ErrorIs(t, err, outbox.ErrBadVector, "no chunk")
	b, err := outbox.EncodeChunks([]outbox.ChunkVector{{Start: 2, End: 7, Vec: []float32{1, 0.5}}}, 2)
	require.NoError(t, err)
	c, err := outbox.DecodeChunks(b, 2)
	require.NoError(t, err)
	require.Len(t, c, 1)
	require.Equal(t, 2, c[0].Start)
	require.Equal(t, 7, c[0].End)
	v, err := outbox.EncodeVector([]float32{1, 0.5}, 2, outbox.EncodingBinary)
	require.NoError(t, err)
	require.Equal(t, v, c[0].Vec)
}
