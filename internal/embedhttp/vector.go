package embedhttp

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// Vector is an embedding as it arrives in JSON: an array of numbers. A null
// element decodes to NaN (SanitizeJSON turns the NaN and Infinity literals
// that Python's json module writes into null), and a number outside the
// float32 range to ±Inf, so that the caller's validation sees them instead of
// a silent 0 or a failure of the whole response.
type Vector []float32

// UnmarshalJSON implements json.Unmarshaler.
func (v *Vector) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*v = nil
		return nil
	}
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return fmt.Errorf("embedding is not an array")
	}
	inner := bytes.TrimSpace(b[1 : len(b)-1])
	out := make(Vector, 0, bytes.Count(inner, []byte(","))+1)
	if len(inner) == 0 {
		*v = out
		return nil
	}
	for len(inner) > 0 {
		var tok []byte
		if i := bytes.IndexByte(inner, ','); i >= 0 {
			tok, inner = inner[:i], inner[i+1:]
		} else {
			tok, inner = inner, nil
		}
		tok = bytes.TrimSpace(tok)
		switch {
		case bytes.Equal(tok, []byte("null")):
			out = append(out, float32(math.NaN()))
		default:
			f, err := strconv.ParseFloat(string(tok), 64)
			if err != nil && !isRangeErr(err) {
				return fmt.Errorf("embedding element %d: %q is not a number", len(out), truncate(tok))
			}
			out = append(out, float32(f)) // out of float32 range gives ±Inf
		}
	}
	*v = out
	return nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// nonFinite are the literals, invalid in JSON, that some servers write for
// non-finite floats (Python's json.dumps by default).
var nonFinite = [][]byte{[]byte("-Infinity"), []byte("Infinity"), []byte("NaN")}

// SanitizeJSON returns b with every NaN, Infinity and -Infinity literal
// outside a string replaced by null, so that encoding/json accepts it. It
// returns b itself when there is none.
func SanitizeJSON(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
		return b
	}
	out := make([]byte, 0, len(b))
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			out = append(out, c)
			continue
		}
		replaced := false
		for _, lit := range nonFinite {
			if bytes.HasPrefix(b[i:], lit) {
				out = append(out, "null"...)
				i += len(lit) - 1
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, c)
		}
	}
	return out
}
