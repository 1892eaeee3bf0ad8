package outbox

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Chunked vectors (`vec:"…;from=Body;chunk=N;overlap=M"`).
//
// A chunked vector field stores one vector per chunk of its row's text in
// its vec0 sidecar. Chunk i of the row with key k has the vec0 rowid
// k*MaxChunks + i (ChunkRowID), so that every chunk of a row is found by a
// rowid range and the key is the rowid's high part; chunked fields need an
// integer primary key whose magnitude is below MaxChunkKey. The chunk's
// byte span in the text is in the vec0 metadata columns chunk_start and
// chunk_end.
//
// The vector of a chunked field travels in one OpVector event as a chunk
// list (EncodeChunks): the magic "OIC1", the chunk count, then per chunk
// its span and its dim float32 values, all little-endian.

// MaxChunks is the most chunks a row's text may have in a chunked field; a
// text with more is an embedding failure of that row (never truncated).
const MaxChunks = 1024

// MaxChunkKey bounds the keys of a table with a chunked field:
// |key| < MaxChunkKey, so that key*MaxChunks+i fits the rowid.
const MaxChunkKey = 1 << 52

// Metadata columns of a chunked vec0 sidecar: the chunk's byte span.
const (
	ChunkStartColumn = "chunk_start"
	ChunkEndColumn   = "chunk_end"
)

var chunkMagic = []byte("OIC1")

// ChunkRowID returns the vec0 rowid of chunk i of the row with key.
func ChunkRowID(key int64, i int) (int64, error) {
	if key <= -MaxChunkKey || key >= MaxChunkKey {
		return 0, fmt.Errorf("%w: key %d out of range for a chunked vector (|key| < 2^52)", ErrBadVector, key)
	}
	if i < 0 || i >= MaxChunks {
		return 0, fmt.Errorf("%w: chunk %d out of range 0..%d", ErrBadVector, i, MaxChunks-1)
	}
	return key*MaxChunks + int64(i), nil
}

// ChunkVector is one chunk's vector and its byte span in the text.
type ChunkVector struct {
	Start, End int
	Vec        []float32
}

// EncodedChunk is one chunk of an encoded chunk list: its span and its
// vector as little-endian float32.
type EncodedChunk struct {
	Start, End int
	Vec        []byte
}

// EncodeChunks validates the chunk vectors against dim (length, NaN, Inf)
// and encodes them for an OpVector event. It needs at least one chunk and
// at most MaxChunks.
func EncodeChunks(chunks []ChunkVector, dim int) ([]byte, error) {
	if len(chunks) == 0 || len(chunks) > MaxChunks {
		return nil, fmt.Errorf("%w: %d chunks, want 1..%d", ErrBadVector, len(chunks), MaxChunks)
	}
	b := make([]byte, 0, 8+len(chunks)*(8+4*dim))
	b = append(b, chunkMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(chunks)))
	for i, c := range chunks {
		if c.Start < 0 || c.End < c.Start || c.End > math.MaxUint32 {
			return nil, fmt.Errorf("%w: chunk %d span %d..%d", ErrBadVector, i, c.Start, c.End)
		}
		v, err := EncodeVector(c.Vec, dim, EncodingBinary)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("%w: chunk %d has no vector", ErrBadVector, i)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(c.Start))
		b = binary.LittleEndian.AppendUint32(b, uint32(c.End))
		b = append(b, v...)
	}
	return b, nil
}

// DecodeChunks decodes a chunk list of dim-dimension vectors.
func DecodeChunks(b []byte, dim int) ([]EncodedChunk, error) {
	if len(b) < 8 || string(b[:4]) != string(chunkMagic) {
		return nil, fmt.Errorf("%w: not a chunk list", ErrBadVector)
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	size := 8 + 4*dim
	if n < 1 || n > MaxChunks || len(b) != 8+n*size {
		return nil, fmt.Errorf("%w: chunk list of %d bytes for %d chunks of dim=%d", ErrBadVector, len(b), n, dim)
	}
	out := make([]EncodedChunk, n)
	for i := range out {
		p := b[8+i*size:]
		out[i] = EncodedChunk{Start: int(binary.LittleEndian.Uint32(p)), End: int(binary.LittleEndian.Uint32(p[4:])), Vec: p[8:size:size]}
	}
	return out, nil
}
