package gormplugin

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// Struct tag names.
const (
	vecTagName = "vec"
	ftsTagName = "fts5"
)

// keyError is a problem with one key of one tag; the model parser adds the
// model and field names.
type keyError struct {
	tag, key, value, msg string
}

func (e *keyError) Error() string {
	if e.key == "" {
		return fmt.Sprintf("%s tag %q: %s", e.tag, e.value, e.msg)
	}
	return fmt.Sprintf("%s tag key %q (value %q): %s", e.tag, e.key, e.value, e.msg)
}

// tagPair is one key=value of a tag, in tag order.
type tagPair struct{ key, value string }

// splitTag splits `k1=v1;k2=v2` into pairs. Keys are case-insensitive; '+' in
// a value stands for a space. Empty segments are ignored; duplicated keys and
// segments without '=' are errors.
func splitTag(tag, name string) ([]tagPair, error) {
	var out []tagPair
	seen := map[string]bool{}
	for _, seg := range strings.Split(tag, ";") {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue
		}
		k, v, ok := strings.Cut(seg, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.ReplaceAll(strings.TrimSpace(v), "+", " ")
		if !ok {
			return nil, &keyError{tag: name, key: k, value: "", msg: "missing '=value'"}
		}
		if k == "" {
			return nil, &keyError{tag: name, value: seg, msg: "missing key before '='"}
		}
		if seen[k] {
			return nil, &keyError{tag: name, key: k, value: v, msg: "key given twice"}
		}
		seen[k] = true
		out = append(out, tagPair{k, v})
	}
	return out, nil
}

// vecTag is a parsed `vec:"…"` tag.
type vecTag struct {
	Dim      int
	Metric   string
	Encoding string
	Table    string // "" = default
	Column   string // "" = default
	Metadata []string
	From     []string // field or column names the vector is derived from
	Chunk    int      // chunk size in runes, 0: not chunked
	Overlap  int      // chunk overlap in runes
	Embedder string   // the indexer's embedder of this vector, "" = the default
}

// maxDim is the largest dimension the registry accepts.
const maxDim = 8192

// parseVecTag parses `dim=N;metric=l2|cosine|dot;encoding=binary|json;
// table=NAME;column=NAME;metadata=c1,c2;from=f1,f2;chunk=N;overlap=M;
// embedder=NAME`.
func parseVecTag(tag string) (vecTag, error) {
	t := vecTag{Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary}
	pairs, err := splitTag(tag, vecTagName)
	if err != nil {
		return t, err
	}
	bad := func(p tagPair, format string, args ...any) error {
		return &keyError{tag: vecTagName, key: p.key, value: p.value, msg: fmt.Sprintf(format, args...)}
	}
	hasDim := false
	for _, p := range pairs {
		switch p.key {
		case "dim":
			n, err := strconv.Atoi(p.value)
			if err != nil {
				return t, bad(p, "not an integer")
			}
			if n < 1 || n > maxDim {
				return t, bad(p, "must be between 1 and %d", maxDim)
			}
			t.Dim, hasDim = n, true
		case "metric":
			switch v := strings.ToLower(p.value); v {
			case outbox.MetricL2, outbox.MetricCosine, outbox.MetricDot:
				t.Metric = v
			default:
				return t, bad(p, "must be l2, cosine or dot")
			}
		case "encoding":
			switch v := strings.ToLower(p.value); v {
			case outbox.EncodingBinary, outbox.EncodingJSON:
				t.Encoding = v
			default:
				return t, bad(p, "must be binary or json")
			}
		case "table":
			if !outbox.ValidIdent(p.value) {
				return t, bad(p, "not a plain SQL name (letters, digits, underscore)")
			}
			t.Table = p.value
		case "column":
			if !outbox.ValidIdent(p.value) || strings.EqualFold(p.value, outbox.DeletedColumn) {
				return t, bad(p, "not a plain SQL name, or the reserved name %q", outbox.DeletedColumn)
			}
			t.Column = p.value
		case "metadata":
			seen := map[string]bool{}
			for _, c := range strings.Split(p.value, ",") {
				c = strings.TrimSpace(c)
				if !outbox.ValidIdent(c) {
					return t, bad(p, "column %q is not a plain SQL name", c)
				}
				if seen[c] {
					return t, bad(p, "column %q listed twice", c)
				}
				seen[c] = true
				t.Metadata = append(t.Metadata, c)
			}
		case "from":
			seen := map[string]bool{}
			for _, c := range strings.Split(p.value, ",") {
				c = strings.TrimSpace(c)
				if !outbox.ValidIdent(c) {
					return t, bad(p, "field %q is not a plain Go or SQL name", c)
				}
				if seen[c] {
					return t, bad(p, "field %q listed twice", c)
				}
				seen[c] = true
				t.From = append(t.From, c)
			}
		case "embedder":
			if !outbox.ValidIdent(p.value) {
				return t, bad(p, "not a plain name (letters, digits, underscore)")
			}
			t.Embedder = p.value
		case "chunk", "overlap":
			n, err := strconv.Atoi(p.value)
			if err != nil {
				return t, bad(p, "not an integer")
			}
			if p.key == "chunk" {
				if n < 1 {
					return t, bad(p, "must be at least 1 (characters per chunk)")
				}
				t.Chunk = n
			} else {
				if n < 0 {
					return t, bad(p, "must not be negative")
				}
				t.Overlap = n
			}
		default:
			return t, bad(p, "unknown key (known: dim, metric, encoding, table, column, metadata, from, chunk, overlap, embedder)")
		}
	}
	if !hasDim {
		return t, &keyError{tag: vecTagName, key: "dim", value: "", msg: "required"}
	}
	if t.Embedder != "" && len(t.From) == 0 {
		return t, &keyError{tag: vecTagName, key: "embedder", value: t.Embedder, msg: "needs from= (only vectors the indexer derives from text have an embedder)"}
	}
	if t.Chunk > 0 || t.Overlap > 0 {
		switch {
		case len(t.From) == 0:
			return t, &keyError{tag: vecTagName, key: "chunk", value: strconv.Itoa(t.Chunk), msg: "needs from= (only vectors the indexer derives from text are chunked)"}
		case t.Chunk == 0:
			return t, &keyError{tag: vecTagName, key: "overlap", value: strconv.Itoa(t.Overlap), msg: "needs chunk="}
		case t.Overlap >= t.Chunk:
			return t, &keyError{tag: vecTagName, key: "overlap", value: strconv.Itoa(t.Overlap), msg: fmt.Sprintf("must be less than chunk=%d", t.Chunk)}
		case t.Metric == outbox.MetricDot:
			return t, &keyError{tag: vecTagName, key: "chunk", value: strconv.Itoa(t.Chunk), msg: "needs metric l2 or cosine"}
		case t.Encoding != outbox.EncodingBinary:
			return t, &keyError{tag: vecTagName, key: "chunk", value: strconv.Itoa(t.Chunk), msg: "needs encoding=binary"}
		case slices.Contains(t.Metadata, outbox.ChunkStartColumn) || slices.Contains(t.Metadata, outbox.ChunkEndColumn):
			return t, &keyError{tag: vecTagName, key: "metadata", value: strings.Join(t.Metadata, ","), msg: "chunk_start and chunk_end are reserved for chunk spans"}
		}
	}
	return t, nil
}

// ftsTag is a parsed `fts5:"…"` tag of one field.
type ftsTag struct {
	Column string // FTS5 column name, "" = the field's column

	// Table-level keys; set records which were given explicitly, so that
	// conflicting values on two fields of one model are reported.
	Tokenize    string
	Prefix      []int
	Table       string
	Detail      string
	External    bool
	Contentless bool
	set         map[string]string // key → raw value, for conflict checks
}

// ftsTableKeys are the keys that describe the shared FTS5 table rather than
// one column.
var ftsTableKeys = []string{"tokenize", "prefix", "table", "detail", "external", "contentless"}

// parseFTSTag parses `tokenize=NAME[+args];prefix=N1,N2;column=NAME;
// table=NAME;detail=full|column|none;external=true|false;contentless=true`.
func parseFTSTag(tag string) (ftsTag, error) {
	t := ftsTag{set: map[string]string{}}
	pairs, err := splitTag(tag, ftsTagName)
	if err != nil {
		return t, err
	}
	bad := func(p tagPair, format string, args ...any) error {
		return &keyError{tag: ftsTagName, key: p.key, value: p.value, msg: fmt.Sprintf(format, args...)}
	}
	for _, p := range pairs {
		switch p.key {
		case "tokenize":
			if p.value == "" || strings.TrimSpace(p.value) != p.value || strings.ContainsAny(p.value, "\x00\n\r\t") {
				return t, bad(p, "empty or with control characters")
			}
			t.Tokenize = p.value
		case "prefix":
			seen := map[int]bool{}
			for _, s := range strings.Split(p.value, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n < 1 || n > 999 {
					return t, bad(p, "%q is not an integer between 1 and 999", s)
				}
				if !seen[n] {
					seen[n] = true
					t.Prefix = append(t.Prefix, n)
				}
			}
		case "column":
			if !outbox.ValidIdent(p.value) {
				return t, bad(p, "not a plain SQL name (letters, digits, underscore)")
			}
			t.Column = p.value
		case "table":
			if !outbox.ValidIdent(p.value) {
				return t, bad(p, "not a plain SQL name (letters, digits, underscore)")
			}
			t.Table = p.value
		case "detail":
			switch v := strings.ToLower(p.value); v {
			case "full", "column", "none":
				t.Detail = v
			default:
				return t, bad(p, "must be full, column or none")
			}
		case "external", "contentless":
			b, err := strconv.ParseBool(p.value)
			if err != nil {
				return t, bad(p, "must be true or false")
			}
			if p.key == "external" {
				t.External = b
			} else {
				t.Contentless = b
			}
		default:
			return t, bad(p, "unknown key (known: tokenize, prefix, column, table, detail, external, contentless)")
		}
		if p.key != "column" {
			t.set[p.key] = canonical(p.key, t)
		}
	}
	if t.Contentless && t.set["external"] == "true" {
		return t, &keyError{tag: ftsTagName, key: "contentless", value: "true", msg: "contentless=true excludes external=true"}
	}
	return t, nil
}

// canonical is the comparable form of a table-level key's parsed value:
// prefix lengths compare as a set, table names case-insensitively (SQLite
// names are), the rest as parsed.
func canonical(key string, t ftsTag) string {
	switch key {
	case "tokenize":
		return t.Tokenize
	case "prefix":
		p := slices.Clone(t.Prefix)
		slices.Sort(p)
		return fmt.Sprint(p)
	case "table":
		return strings.ToLower(t.Table)
	case "detail":
		return t.Detail
	case "external":
		return strconv.FormatBool(t.External)
	case "contentless":
		return strconv.FormatBool(t.Contentless)
	}
	return ""
}

// declaredMode is the FTS5 mode a field's tag asks for on its own, with the
// keys that ask for it; "" when the tag leaves the mode to the default
// (neither contentless=true nor external=…).
func declaredMode(t ftsTag) (mode, keys string) {
	_, ext := t.set["external"]
	switch {
	case t.Contentless:
		return outbox.ModeContentless, "contentless=true"
	case ext && t.External:
		return outbox.ModeExternal, "external=true"
	case ext:
		return outbox.ModeInTable, "external=false"
	}
	return "", ""
}

// ftsMerge merges the table-level keys of the fts5 tags of one model's
// fields, which all describe the same FTS5 table: a key given on several
// fields must have the same value on each, and the modes the fields ask for
// (contentless=true, external=true, external=false) must be the same.
type ftsMerge struct {
	tag       ftsTag            // merged table-level keys
	origin    map[string]string // table-level key → first field that gave it
	mode      string            // declared mode, "" = none yet
	modeKeys  string            // the keys that declared it
	modeField string            // the field that declared it
}

func newFTSMerge() *ftsMerge {
	return &ftsMerge{tag: ftsTag{set: map[string]string{}}, origin: map[string]string{}}
}

// add merges the tag of field. On a conflict it returns a message naming
// the key, both values and the other field (the caller names field).
func (m *ftsMerge) add(field string, t ftsTag) error {
	for _, k := range ftsTableKeys {
		b, ok := t.set[k]
		if !ok {
			continue
		}
		if a, seen := m.tag.set[k]; seen {
			if a != b {
				return fmt.Errorf("fts5 tag key %q: %q conflicts with %q on field %s (all fields share one FTS5 table)", k, rawValue(k, t), rawValue(k, m.tag), m.origin[k])
			}
			continue
		}
		m.tag.set[k] = b
		m.tag = mergeTableKey(m.tag, t, k)
		m.origin[k] = field
	}
	if mode, keys := declaredMode(t); mode != "" {
		switch {
		case m.mode == "":
			m.mode, m.modeKeys, m.modeField = mode, keys, field
		case m.mode != mode:
			return fmt.Errorf("fts5 tag: %s (%s mode) conflicts with %s (%s mode) on field %s (all fields share one FTS5 table)", keys, mode, m.modeKeys, m.mode, m.modeField)
		}
	}
	return nil
}

// rawValue is the value of table-level key k as parsed, for messages.
func rawValue(k string, t ftsTag) string {
	if k == "prefix" {
		return strings.Trim(strings.ReplaceAll(fmt.Sprint(t.Prefix), " ", ","), "[]")
	}
	if k == "table" {
		return t.Table
	}
	return canonical(k, t)
}

// mergeTableKey copies table-level key k from t into first.
func mergeTableKey(first, t ftsTag, k string) ftsTag {
	switch k {
	case "tokenize":
		first.Tokenize = t.Tokenize
	case "prefix":
		first.Prefix = t.Prefix
	case "table":
		first.Table = t.Table
	case "detail":
		first.Detail = t.Detail
	case "external":
		first.External = t.External
	case "contentless":
		first.Contentless = t.Contentless
	}
	return first
}
