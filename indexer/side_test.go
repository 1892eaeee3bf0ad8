package indexer

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// The move's position survives its trip through oi_rebuild.after with the
// type of every key value: a blob stays a blob (SQLite orders text before
// blobs, so a blob turned into text would restart the copy at the wrong
// row).
func TestMoveKeyCodec(t *testing.T) {
	t.Parallel()
	in := []any{nil, int64(-7), int64(math.MaxInt64), 2.5, "", "term", []byte{}, []byte{0, 0xff, 'a'}}
	enc := make([]string, len(in))
	for i, v := range in {
		var err error
		enc[i], err = encodeKeyValue(v)
		require.NoError(t, err)
	}
	out, err := decodeKeyValues(enc)
	require.NoError(t, err)
	require.Equal(t, in, out)

	_, err = encodeKeyValue(true)
	require.ErrorContains(t, err, "unexpected bool")
	for _, bad := range []string{"", "x1", "inope", "bzz", "r1e"} {
		_, err := decodeKeyValues([]string{bad})
		require.Error(t, err, "%q", bad)
	}
}

// FuzzMoveKeyCodec: decoding never panics, and what decodes encodes back
// to the same text.
func FuzzMoveKeyCodec(f *testing.F) {
	for _, s := range []string{"n", "i42", "r-0.5", "tabc", "b00ff", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vals, err := decodeKeyValues([]string{s})
		if err != nil {
			return
		}
		e, err := encodeKeyValue(vals[0])
		if err != nil {
			t.Fatalf("decoded %q to %#v, which does not encode: %v", s, vals[0], err)
		}
		again, err := decodeKeyValues([]string{e})
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", e, err)
		}
		switch a := again[0].(type) {
		case []byte:
			if !bytes.Equal(a, vals[0].([]byte)) {
				t.Fatalf("%q: %x != %x", s, a, vals[0])
			}
		case float64:
			if b := vals[0].(float64); a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
				t.Fatalf("%q: %v != %v", s, a, b)
			}
		default:
			if again[0] != vals[0] {
				t.Fatalf("%q: %#v != %#v", s, again[0], vals[0])
			}
		}
	})
}

// copiedAt finds the range a key was copied in: the first whose upper
// bound is at or above it (the last range has none).
func TestCopiedAt(t *testing.T) {
	t.Parallel()
	ranges := []sideRange{{hi: 10, head: 100}, {hi: 20, head: 150}, {hi: math.MaxInt64, head: 170}}
	for k, want := range map[int64]int64{-5: 100, 1: 100, 10: 100, 11: 150, 20: 150, 21: 170, 1 << 40: 170} {
		require.Equal(t, want, copiedAt(ranges, k), "key %d", k)
	}
}
