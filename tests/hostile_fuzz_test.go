package tests

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// FuzzRawEventDecode feeds arbitrary rows of oi_events, as the indexer
// reads them (outbox.RawEvent), to Decode: it must never panic, and what it
// accepts must be well formed: an integer or text key, a valid op, a
// before-image of scalars with exact integer types.
func FuzzRawEventDecode(f *testing.F) {
	f.Add(int64(1), "", int64(2), []byte(nil), "", false)
	f.Add(int64(0), "k1", int64(6), []byte{0, 0, 128, 63}, `["a", 1, 2.5, null, true]`, true)
	f.Add(int64(-1), "", int64(99), []byte("[1,2]"), `{"x":1}`, true)
	f.Add(int64(5), "", int64(3), []byte{}, `[9223372036854775808, 1e400, "\u0000"]`, true)
	f.Add(int64(5), "", int64(4), []byte(nil), `[`, true)
	f.Add(int64(5), "", int64(1), []byte(nil), `[[1],{"a":2}]`, true)
	f.Add(int64(5), "", int64(1), []byte(nil), `null`, true)
	f.Fuzz(func(t *testing.T, ikey int64, skey string, op int64, vec []byte, old string, hasOld bool) {
		r := outbox.RawEvent{ID: 1, Table: "t", Key: ikey, Op: op, Vec: vec, At: 1}
		if skey != "" {
			r.Key = skey
		}
		if hasOld {
			r.Old = &old
		}
		e, err := r.Decode()
		if err != nil {
			require.ErrorIs(t, err, outbox.ErrBadEvent)
			return
		}
		require.True(t, e.Op.Valid())
		switch e.Key.(type) {
		case int64, string:
		default:
			t.Fatalf("key %v decoded as %T", e.Key, e.Key)
		}
		for i, v := range e.Old {
			switch v.(type) {
			case nil, int64, float64, string:
			default:
				t.Fatalf("old[%d] = %v decoded as %T", i, v, v)
			}
		}
		if hasOld {
			require.True(t, json.Valid([]byte(old)), "accepted a before-image that is not JSON: %q", old)
		}
	})
}
