package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
)

// Key types of a source table's primary key.
const (
	KeyInteger = "integer"
	KeyText    = "text"
)

// Vector metrics.
const (
	MetricL2     = "l2"
	MetricCosine = "cosine"
	MetricDot    = "dot" // vec0 has no dot metric: stored as l2, ranked by exact inner product at query time
)

// Vector encodings in the event log.
const (
	EncodingBinary = "binary"
	EncodingJSON   = "json"
)

// FTS5 modes.
const (
	ModeExternal    = "external"    // content=<source>: FTS5 reads the text from the source table
	ModeInTable     = "intable"     // FTS5 keeps its own copy of the text
	ModeContentless = "contentless" // content='', contentless_delete=1: index only
)

// SpecVersion is the version of the Spec JSON format.
const SpecVersion = 1

// Spec is everything an indexer needs to know about one indexed source table.
// gormplugin.Migrate derives it from model tags and stores it as JSON in
// oi_registry, so that a process with no Go types can index the table.
type Spec struct {
	Version    int    `json:"version"`
	Source     string `json:"source"`                // source table
	Model      string `json:"model,omitempty"`       // Go type name, informational
	Key        string `json:"key"`                   // primary key column
	KeyType    string `json:"key_type"`              // KeyInteger or KeyText
	SoftDelete string `json:"soft_delete,omitempty"` // soft-delete column (gorm.DeletedAt), "" if none
	// Vec is the first (primary) vector field's vec0 sidecar. Its vectors
	// travel in events whose field column is NULL: on the capture trigger's
	// event, or an OpVector event.
	Vec *VecSpec `json:"vec,omitempty"`
	// MoreVecs are the model's other vector fields, one vec0 sidecar each
	// (set only when Vec is). Their vectors travel as OpVector events whose
	// field column is the VecSpec's Table (see VecSpec.EventField).
	MoreVecs []VecSpec `json:"more_vecs,omitempty"`
	FTS      *FTSSpec  `json:"fts,omitempty"`
}

// VecSpecs returns every vec0 sidecar of the spec: Vec first, then
// MoreVecs, as pointers into the spec. It is empty without a vec sidecar.
func (s *Spec) VecSpecs() []*VecSpec {
	if s.Vec == nil {
		return nil
	}
	out := make([]*VecSpec, 0, 1+len(s.MoreVecs))
	out = append(out, s.Vec)
	for i := range s.MoreVecs {
		out = append(out, &s.MoreVecs[i])
	}
	return out
}

// ForVec returns a copy of s that describes v as its only vec sidecar (and
// no FTS sidecar): what code written for one vec0 table reads (vecsink's
// DDL, apply and queries use Spec.Vec). v must be one of s.VecSpecs().
func (s *Spec) ForVec(v *VecSpec) *Spec {
	c := *s
	c.Vec, c.MoreVecs, c.FTS = v, nil, nil
	return &c
}

// EventField returns the value of oi_events.field that the vectors of v
// carry in the spec s: "" (SQL NULL) for the primary Vec, the vec0 table
// name for the others. The table name, not the Go field name, identifies
// the vector: it is unique within the registry entry, a plain identifier,
// and does not change when the Go field is renamed.
func (s *Spec) EventField(v *VecSpec) string {
	if v == nil || s.Vec == nil || v.Table == s.Vec.Table {
		return ""
	}
	return v.Table
}

// VecSpec describes a vec0 sidecar.
type VecSpec struct {
	Table    string    `json:"table"`    // vec0 table, default <source>_vec
	Column   string    `json:"column"`   // vector column in the vec0 table, default embedding
	Field    string    `json:"field"`    // Go field name (the source table has no such column)
	Dim      int       `json:"dim"`      // dimensions
	Metric   string    `json:"metric"`   // MetricL2, MetricCosine or MetricDot
	Encoding string    `json:"encoding"` // EncodingBinary or EncodingJSON
	Metadata []MetaCol `json:"metadata,omitempty"`
	// From lists the source columns the vector is derived from (tag key
	// from=): the indexer embeds their text (see EmbedText) with the
	// embedder it was given, and the application never sets this vector.
	// Empty for vectors the application supplies.
	From []string `json:"from,omitempty"`
	// Chunk, when positive, splits the text of a derived vector into
	// chunks of at most Chunk characters (runes) overlapping by at most
	// Overlap, and stores one vector per chunk (see ChunkRowID).
	Chunk   int `json:"chunk,omitempty"`
	Overlap int `json:"overlap,omitempty"`
	// Embedder names the embedder of a derived vector (tag key embedder=,
	// indexer.WithNamedEmbedder); "" is the indexer's default embedder
	// (indexer.WithEmbedder).
	Embedder string `json:"embedder,omitempty"`
	// Gen is the generation of the vec0 table that holds the field now
	// (see Live): 0 for Table itself, n > 0 for the table an online
	// rebuild built and swapped in. Only the indexer's rebuild sets it.
	Gen int `json:"gen,omitempty"`
}

// Chunked reports whether the vector is stored as one vector per chunk of
// its text.
func (v *VecSpec) Chunked() bool { return v != nil && v.Chunk > 0 }

// Derived reports whether the indexer computes this vector from source
// text (from=) rather than the application supplying it.
func (v *VecSpec) Derived() bool { return v != nil && len(v.From) > 0 }

// FromSeparator joins the texts of a derived vector's from= columns (see
// EmbedText).
const FromSeparator = "\n\n"

// EmbedText returns the text a derived vector is computed from: the values
// of the from= columns, in VecSpec.From order, NULL as "", joined with
// FromSeparator; blank columns are left out, so that adding an empty column
// does not change the text. A text that is empty or only white space gets
// no vector.
func EmbedText(values []any) string {
	var b strings.Builder
	for _, v := range values {
		var s string
		switch x := v.(type) {
		case nil:
			continue
		case string:
			s = x
		case []byte:
			s = string(x)
		default:
			s = fmt.Sprint(x)
		}
		if strings.TrimSpace(s) == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(FromSeparator)
		}
		b.WriteString(s)
	}
	return b.String()
}

// DerivedVecs returns the vec specs of s whose vectors are derived from
// text (from=), as pointers into s.
func (s *Spec) DerivedVecs() []*VecSpec {
	var out []*VecSpec
	for _, v := range s.VecSpecs() {
		if v.Derived() {
			out = append(out, v)
		}
	}
	return out
}

// Live returns the name of the vec0 table that holds the field now: Table
// for generation 0, GenName(Table, Gen) after an online rebuild. Queries,
// apply and DDL use it; Table stays the field's identity (EventField,
// vecsink.WithField).
func (v *VecSpec) Live() string { return GenName(v.Table, v.Gen) }

// GenName returns the physical name of generation gen of the sidecar
// table: table itself for generation 0, table + "__g" + gen otherwise. vec0
// tables cannot be renamed, so an online rebuild builds the next generation
// under a new name and the registry records which one is live.
func GenName(table string, gen int) string {
	if gen == 0 {
		return table
	}
	return fmt.Sprintf("%s__g%d", table, gen)
}

// MetaCol is a source column copied into a vec0 metadata column, usable in
// KNN filters. The vec0 table always has a "deleted" metadata column (0/1)
// when the source table has a soft-delete column.
type MetaCol struct {
	Name string `json:"name"` // column name, the same in the source and the vec0 table
	Type string `json:"type"` // vec0 metadata type: integer, float, text or boolean
}

// FTSSpec describes an FTS5 sidecar.
type FTSSpec struct {
	Table    string   `json:"table"`            // FTS5 table, default <source>_fts
	Mode     string   `json:"mode"`             // ModeExternal, ModeInTable or ModeContentless
	Tokenize string   `json:"tokenize"`         // FTS5 tokenize option, e.g. "porter unicode61"
	Prefix   []int    `json:"prefix,omitempty"` // prefix index lengths
	Detail   string   `json:"detail,omitempty"` // full (default), column or none
	Columns  []FTSCol `json:"columns"`          // indexed columns in FTS5 column order
	Gen      int      `json:"gen,omitempty"`    // generation of the live FTS5 table (see Live)
}

// Live returns the name of the FTS5 table that is live now: Table for
// generation 0, GenName(Table, Gen) after an online rebuild.
func (f *FTSSpec) Live() string { return GenName(f.Table, f.Gen) }

// FTSCol maps a source column to an FTS5 column.
type FTSCol struct {
	Name   string `json:"name"`   // FTS5 column name
	Source string `json:"source"` // source column name (equal to Name in external mode)
	Field  string `json:"field"`  // Go field name, informational
}

// DeletedColumn is the FTS5 UNINDEXED column and the vec0 metadata column that
// hold the soft-delete flag (0 live, 1 deleted). In external-content mode the
// FTS5 table instead declares the source's soft-delete column as UNINDEXED,
// because external content reads every column by name from the source.
const DeletedColumn = "deleted"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// ValidIdent reports whether s is a plain SQL identifier: a letter or
// underscore followed by letters, digits or underscores, at most 128 bytes.
// Every table and column name that comes from a tag or the registry must pass
// it; names are also always double-quoted in generated SQL.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// Quote double-quotes an identifier for SQL.
func Quote(s string) string { return sqlutil.Quote(s) }

// Validate checks the spec for internal consistency and identifier safety.
func (s *Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: table %q: %s", ErrBadSpec, s.Source, fmt.Sprintf(format, args...))
	}
	if s.Version != SpecVersion {
		return bad("spec version %d, this build reads %d", s.Version, SpecVersion)
	}
	for _, id := range []string{s.Source, s.Key} {
		if !ValidIdent(id) {
			return bad("identifier %q is not a plain SQL name", id)
		}
	}
	if s.SoftDelete != "" && !ValidIdent(s.SoftDelete) {
		return bad("soft-delete column %q is not a plain SQL name", s.SoftDelete)
	}
	if s.KeyType != KeyInteger && s.KeyType != KeyText {
		return bad("key type %q", s.KeyType)
	}
	if s.Vec == nil && s.FTS == nil {
		return bad("no vec and no fts sidecar")
	}
	if s.Vec == nil && len(s.MoreVecs) > 0 {
		return bad("more_vecs without vec")
	}
	tables := map[string]bool{}
	fields := map[string]bool{}
	for _, v := range s.VecSpecs() {
		if tables[strings.ToLower(v.Table)] {
			return bad("vec table %q is used by two vector fields", v.Table)
		}
		tables[strings.ToLower(v.Table)] = true
		if v.Field != "" {
			if fields[v.Field] {
				return bad("vec field %q is listed twice", v.Field)
			}
			fields[v.Field] = true
		}
		if !ValidIdent(v.Table) || !ValidIdent(v.Column) {
			return bad("vec table/column %q/%q is not a plain SQL name", v.Table, v.Column)
		}
		if v.Gen < 0 {
			return bad("vec table %q generation %d", v.Table, v.Gen)
		}
		if v.Dim <= 0 || v.Dim > 8192 {
			return bad("vec dim %d out of range 1..8192", v.Dim)
		}
		if !slices.Contains([]string{MetricL2, MetricCosine, MetricDot}, v.Metric) {
			return bad("vec metric %q", v.Metric)
		}
		if v.Encoding != EncodingBinary && v.Encoding != EncodingJSON {
			return bad("vec encoding %q", v.Encoding)
		}
		for _, m := range v.Metadata {
			if !ValidIdent(m.Name) || m.Name == DeletedColumn || m.Name == v.Column {
				return bad("vec metadata column %q", m.Name)
			}
			if !slices.Contains([]string{"integer", "float", "text", "boolean"}, m.Type) {
				return bad("vec metadata column %q type %q", m.Name, m.Type)
			}
		}
		from := map[string]bool{}
		for _, c := range v.From {
			if !ValidIdent(c) {
				return bad("vec %q: from column %q is not a plain SQL name", v.Table, c)
			}
			if from[strings.ToLower(c)] {
				return bad("vec %q: from column %q is listed twice", v.Table, c)
			}
			from[strings.ToLower(c)] = true
		}
		if v.Embedder != "" && (len(v.From) == 0 || !ValidIdent(v.Embedder)) {
			return bad("vec %q: embedder %q needs from= and a plain name (letters, digits, underscore)", v.Table, v.Embedder)
		}
		if v.Chunk != 0 || v.Overlap != 0 {
			switch {
			case len(v.From) == 0:
				return bad("vec %q: chunk= needs from= (only vectors derived from text are chunked)", v.Table)
			case v.Chunk < 1 || v.Overlap < 0 || v.Overlap >= v.Chunk:
				return bad("vec %q: chunk=%d;overlap=%d: want chunk >= 1 and 0 <= overlap < chunk", v.Table, v.Chunk, v.Overlap)
			case s.KeyType != KeyInteger:
				return bad("vec %q: chunk= needs an integer primary key", v.Table)
			case v.Encoding != EncodingBinary:
				return bad("vec %q: chunk= needs encoding=binary", v.Table)
			case v.Metric == MetricDot:
				return bad("vec %q: chunk= needs metric l2 or cosine", v.Table)
			}
			for _, m := range v.Metadata {
				if m.Name == ChunkStartColumn || m.Name == ChunkEndColumn {
					return bad("vec %q: metadata column %q is reserved for chunk spans", v.Table, m.Name)
				}
			}
		}
	}
	if f := s.FTS; f != nil {
		if !ValidIdent(f.Table) {
			return bad("fts table %q is not a plain SQL name", f.Table)
		}
		if tables[strings.ToLower(f.Table)] {
			return bad("fts table %q is also a vec table", f.Table)
		}
		if f.Gen < 0 {
			return bad("fts table %q generation %d", f.Table, f.Gen)
		}
		if !slices.Contains([]string{ModeExternal, ModeInTable, ModeContentless}, f.Mode) {
			return bad("fts mode %q", f.Mode)
		}
		if f.Mode == ModeExternal && s.KeyType != KeyInteger {
			return bad("external-content FTS5 needs an integer primary key (use external=false or contentless=true)")
		}
		if f.Detail != "" && f.Detail != "full" && f.Detail != "column" && f.Detail != "none" {
			return bad("fts detail %q", f.Detail)
		}
		if len(f.Columns) == 0 {
			return bad("fts has no columns")
		}
		seen := map[string]bool{}
		for _, c := range f.Columns {
			if !ValidIdent(c.Name) || !ValidIdent(c.Source) {
				return bad("fts column %q (source %q) is not a plain SQL name", c.Name, c.Source)
			}
			if seen[c.Name] || c.Name == DeletedColumn || (s.SoftDelete != "" && c.Name == s.SoftDelete) {
				return bad("fts column %q is duplicated or reserved", c.Name)
			}
			if f.Mode == ModeExternal && c.Name != c.Source {
				return bad("fts column %q must be named like its source column %q in external-content mode", c.Name, c.Source)
			}
			seen[c.Name] = true
		}
		for _, p := range f.Prefix {
			if p < 1 || p > 999 {
				return bad("fts prefix %d out of range 1..999", p)
			}
		}
	}
	return nil
}

// SaveSpec inserts or replaces the registry entry of spec.Source and
// (re)creates the source table's capture triggers to match it (see
// TriggerDDL): the source table must exist.
func SaveSpec(ctx context.Context, db DB, spec *Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("outbox: encode spec of %s: %w", spec.Source, err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO oi_registry (source, spec, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		spec.Source, string(b), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("outbox: save spec of %s: %w", spec.Source, err)
	}
	return CreateTriggers(ctx, db, spec)
}

// LoadSpec returns the registry entry of a source table, or ErrNotRegistered.
func LoadSpec(ctx context.Context, db DB, source string) (*Spec, error) {
	var raw string
	err := db.QueryRowContext(ctx, `SELECT spec FROM oi_registry WHERE source = ?`, source).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, source)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: load spec of %s: %w", source, err)
	}
	return ParseSpec(raw)
}

// ParseSpec decodes and validates a registry spec.
func ParseSpec(raw string) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSpec, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// LoadSpecs returns every registry entry, ordered by source table. Entries
// that fail to parse are returned in errs keyed by source, so that one bad
// row never hides the others.
func LoadSpecs(ctx context.Context, db DB) (specs []*Spec, errs map[string]error, err error) {
	rows, err := db.QueryContext(ctx, `SELECT source, spec FROM oi_registry ORDER BY source`)
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: load registry: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var src, raw string
		if err := rows.Scan(&src, &raw); err != nil {
			return nil, nil, fmt.Errorf("outbox: load registry: %w", err)
		}
		s, perr := ParseSpec(raw)
		if perr != nil {
			if errs == nil {
				errs = map[string]error{}
			}
			errs[src] = perr
			continue
		}
		specs = append(specs, s)
	}
	return specs, errs, rows.Err()
}

// DeleteSpec removes the registry entry of a source table and its capture
// triggers, and purges every event of it (pending, retained and
// dead-lettered) plus its key map, key floors, queued backfill and
// embedding queue and state; an online rebuild in progress is discarded
// with the tables it was building (see DiscardRebuild). Run it inside the
// transaction that drops the sidecars.
func DeleteSpec(ctx context.Context, db DB, source string) error {
	if err := DropTriggers(ctx, db, source); err != nil {
		return err
	}
	if err := DiscardRebuild(ctx, db, source); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM oi_backfill WHERE tbl = ?`,
		`DELETE FROM oi_registry WHERE source = ?`,
		`DELETE FROM oi_events WHERE tbl = ?`,
		`DELETE FROM oi_latest WHERE tbl = ?`,
		`DELETE FROM oi_deadletters WHERE tbl = ?`,
		`DELETE FROM oi_keymap WHERE tbl = ?`,
		`DELETE FROM oi_floor WHERE tbl = ?`,
		`DELETE FROM oi_embed_queue WHERE tbl = ?`,
		`DELETE FROM oi_embed_state WHERE tbl = ?`,
	} {
		if _, err := db.ExecContext(ctx, q, source); err != nil {
			return fmt.Errorf("outbox: purge %s: %w", source, err)
		}
	}
	return nil
}

// Equal reports whether two specs describe the same sidecars (ignoring the
// informational Model and Field names and the generations of the live
// tables).
func (s *Spec) Equal(o *Spec) bool {
	a, b := *s, *o
	a.Model, b.Model = "", ""
	ja, _ := json.Marshal(normalized(&a))
	jb, _ := json.Marshal(normalized(&b))
	return string(ja) == string(jb)
}

func normalized(s *Spec) *Spec {
	c := *s
	if s.Vec != nil {
		v := *s.Vec
		v.Field, v.Gen = "", 0
		c.Vec = &v
	}
	if s.MoreVecs != nil {
		c.MoreVecs = slices.Clone(s.MoreVecs)
		for i := range c.MoreVecs {
			c.MoreVecs[i].Field, c.MoreVecs[i].Gen = "", 0
		}
	}
	if s.FTS != nil {
		f := *s.FTS
		f.Gen = 0
		f.Columns = slices.Clone(f.Columns)
		for i := range f.Columns {
			f.Columns[i].Field = ""
		}
		c.FTS = &f
	}
	return &c
}
