package outbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"
)

// Op says what a write did to a row. The indexer's apply is state based (it
// reads the row's current text from the source table), so the op mostly
// matters for deletes and for people reading the log.
type Op int

// The operations recorded by the capture side.
const (
	OpInsert     Op = 1 // a row was created
	OpUpdate     Op = 2 // columns of a live row changed
	OpDelete     Op = 3 // the row was removed (hard delete)
	OpSoftDelete Op = 4 // the soft-delete column was set
	OpRestore    Op = 5 // the soft-delete column was cleared
	OpUpsert     Op = 6 // INSERT … ON CONFLICT: created or overwritten, not known which (written by schema version 2 only)
	OpVector     Op = 7 // the application set the row's vector (Vec); no source column changed with it
)

var opNames = [...]string{OpInsert: "insert", OpUpdate: "update", OpDelete: "delete", OpSoftDelete: "softdelete", OpRestore: "restore", OpUpsert: "upsert", OpVector: "vector"}

// String returns the op's lower-case name.
func (o Op) String() string {
	if o > 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Valid reports whether o is one of the defined operations.
func (o Op) Valid() bool { return o >= OpInsert && o <= OpVector }

// Vector states carried by Event.Vec.
//
//   - nil (SQL NULL): the write did not touch the vector; the indexer keeps
//     the stored one.
//   - empty, non-nil: the row has no vector; the indexer removes any stored
//     one. It is stored as the empty TEXT '' (see NoVector), not as a
//     zero-length BLOB: ncruces/go-sqlite3 v0.21.3's database/sql driver,
//     used by earlier releases, failed with "another row available" when it
//     read a zero-length BLOB, and the log format stays compatible.
//   - otherwise: the new vector, little-endian float32 (encoding=binary) or
//     a JSON array (encoding=json), exactly as vec0 accepts it.
//
// The capture triggers write insert events with the empty Vec for tables with
// a vector sidecar, so a re-created key never inherits the vector of a deleted
// one; the plugin's OpVector event that follows carries the vector.

// NoVector is the SQL value of oi_events.vec meaning "this row has no vector".
// In SQL, test it with length(vec) = 0.
const NoVector = ""

// Event is one row of oi_events.
type Event struct {
	ID    int64     // position in the log, assigned by SQLite (AUTOINCREMENT)
	Table string    // source table
	Key   any       // primary key: int64 or string
	Op    Op        // what the write did
	Vec   []byte    // see "Vector states" above
	Old   []any     // external-content FTS only: the indexed columns' values before the write (nil when not applicable)
	At    time.Time // commit-side timestamp (the time of the write), for lag
	// Field says which vector Vec is, for a model with several vector
	// fields: "" (SQL NULL) for the first one (Spec.Vec), whose vector the
	// capture trigger's event carries, else Spec.EventField of the VecSpec
	// (OpVector events only).
	Field string
}

// Row form of Event.Old: a JSON array of the FTS source columns' values in
// FTSSpec.Columns order, or NULL.
func encodeOld(old []any) (any, error) {
	if old == nil {
		return nil, nil
	}
	b, err := json.Marshal(old)
	if err != nil {
		return nil, fmt.Errorf("outbox: encode before-image: %w", err)
	}
	return string(b), nil
}

// DecodeOld parses the oi_events.old column.
func DecodeOld(s *string) ([]any, error) {
	if s == nil {
		return nil, nil
	}
	var out []any
	if err := json.Unmarshal([]byte(*s), &out); err != nil {
		return nil, fmt.Errorf("%w: old column: %v", ErrBadEvent, err)
	}
	return out, nil
}

// maxVarsPerStatement is below SQLite's SQLITE_MAX_VARIABLE_NUMBER default
// (32766 since 3.32).
const maxVarsPerStatement = 32000

const eventCols = 6 // tbl, key, op, vec, old, at

const fieldEventCols = 7 // tbl, key, op, vec, old, at, field

// Append writes events with as few multi-row INSERT statements as SQLite's
// variable limit allows (one for any batch of up to 5333 events). Use the
// transaction of the write being captured.
func Append(ctx context.Context, db DB, events []Event) error {
	return AppendWith(ctx, func(ctx context.Context, query string, args ...any) error {
		_, err := db.ExecContext(ctx, query, args...)
		return err
	}, events)
}

// ExecFunc runs one statement with its arguments.
type ExecFunc func(ctx context.Context, query string, args ...any) error

// MaxAppendRows is the largest number of events Append writes with one
// INSERT statement.
const MaxAppendRows = maxVarsPerStatement / eventCols

// AppendWith is Append with the INSERT statements run by exec instead of
// db.ExecContext, for callers that keep prepared statements: the query text
// depends only on the number of events in the statement (see AppendQuery).
// The events are validated before exec runs.
func AppendWith(ctx context.Context, exec ExecFunc, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	for start, end := 0, 0; start < len(events); start = end {
		end = min(start+MaxAppendRows, len(events))
		chunk := events[start:end]
		// Events of the first vector field (all but a few) use the
		// six-column statement; a chunk with a field of its own names it.
		withField := false
		for _, e := range chunk {
			if e.Field != "" {
				withField = true
				break
			}
		}
		if withField && len(chunk) > maxVarsPerStatement/fieldEventCols {
			chunk = chunk[:maxVarsPerStatement/fieldEventCols]
			end = start + len(chunk)
		}
		args := make([]any, 0, len(chunk)*fieldEventCols)
		var now int64
		for _, e := range chunk {
			if !e.Op.Valid() {
				return fmt.Errorf("%w: table %s key %v: op %d", ErrBadEvent, e.Table, e.Key, e.Op)
			}
			if e.Field != "" && e.Op != OpVector {
				return fmt.Errorf("%w: table %s key %v: op %s with field %q (only vector events name a field)", ErrBadEvent, e.Table, e.Key, e.Op, e.Field)
			}
			old, err := encodeOld(e.Old)
			if err != nil {
				return err
			}
			var at int64
			if e.At.IsZero() {
				if now == 0 {
					now = time.Now().UnixNano()
				}
				at = now
			} else {
				at = e.At.UnixNano()
			}
			var vec any
			switch {
			case e.Vec == nil:
			case len(e.Vec) == 0:
				vec = NoVector
			default:
				vec = e.Vec
			}
			args = append(args, e.Table, e.Key, int64(e.Op), vec, old, at)
			if withField {
				var field any
				if e.Field != "" {
					field = e.Field
				}
				args = append(args, field)
			}
		}
		q := ""
		if withField {
			q = appendFieldQuery(len(chunk))
		} else {
			q = AppendQuery(len(chunk))
		}
		if err := exec(ctx, q, args...); err != nil {
			return fmt.Errorf("outbox: append %d events: %w", len(chunk), err)
		}
	}
	return nil
}

// appendFieldQuery is AppendQuery with the field column: arguments tbl,
// key, op, vec, old, at, field per event.
func appendFieldQuery(n int) string {
	const head = "INSERT INTO oi_events (tbl, key, op, vec, old, at, field) VALUES "
	const row = "(?,?,?,?,?,?,?)"
	return head + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// appendQueries caches the query text of the most common statement sizes.
var appendQueries [65]atomic.Pointer[string]

// AppendQuery returns the INSERT statement that appends n events (1 ≤ n ≤
// MaxAppendRows), with the arguments tbl, key, op, vec, old, at per event.
func AppendQuery(n int) string {
	if n < len(appendQueries) {
		if q := appendQueries[n].Load(); q != nil {
			return *q
		}
	}
	const head = "INSERT INTO oi_events (tbl, key, op, vec, old, at) VALUES "
	const row = "(?,?,?,?,?,?)"
	var sb strings.Builder
	sb.Grow(len(head) + n*(len(row)+1))
	sb.WriteString(head)
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(row)
	}
	q := sb.String()
	if n < len(appendQueries) {
		appendQueries[n].Store(&q)
	}
	return q
}

// ReadEvents returns up to limit events with id > after, in id order.
func ReadEvents(ctx context.Context, db DB, after int64, limit int) ([]Event, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, tbl, key, op, vec, old, at, field FROM oi_events WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: read events: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanEvent(s scanner) (Event, error) {
	var (
		e     Event
		op    int64
		old   *string
		at    int64
		key   any
		vec   []byte
		field *string
	)
	if err := s.Scan(&e.ID, &e.Table, &key, &op, &vec, &old, &at, &field); err != nil {
		return e, fmt.Errorf("outbox: scan event: %w", err)
	}
	if field != nil {
		e.Field = *field
	}
	e.Op = Op(op)
	e.At = time.Unix(0, at)
	e.Vec = vec
	k, err := NormalizeKey(key)
	if err != nil {
		return e, fmt.Errorf("%w: event %d: %v", ErrBadEvent, e.ID, err)
	}
	e.Key = k
	if e.Old, err = DecodeOld(old); err != nil {
		return e, fmt.Errorf("event %d: %w", e.ID, err)
	}
	if !e.Op.Valid() {
		return e, fmt.Errorf("%w: event %d: unknown op %d", ErrBadEvent, e.ID, op)
	}
	return e, nil
}

// NormalizeKey converts a scanned or user-supplied primary key to the two
// forms events use: int64 for integer keys, string for text keys.
func NormalizeKey(k any) (any, error) {
	switch v := k.(type) {
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case int8:
		return int64(v), nil
	case uint:
		if uint64(v) > math.MaxInt64 {
			return nil, fmt.Errorf("key %d overflows int64", v)
		}
		return int64(v), nil
	case uint64:
		if v > math.MaxInt64 {
			return nil, fmt.Errorf("key %d overflows int64", v)
		}
		return int64(v), nil
	case uint32:
		return int64(v), nil
	case uint16:
		return int64(v), nil
	case uint8:
		return int64(v), nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case nil:
		return nil, fmt.Errorf("key is NULL")
	default:
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
}

// EncodeVector validates v against dim and encodes it for the vec column:
// little-endian float32 for "binary", a JSON array for "json". A nil or empty
// v encodes as the empty, non-nil slice meaning "no vector".
func EncodeVector(v []float32, dim int, encoding string) ([]byte, error) {
	if len(v) == 0 {
		return []byte{}, nil
	}
	if len(v) != dim {
		return nil, fmt.Errorf("%w: length %d, want dim=%d", ErrBadVector, len(v), dim)
	}
	if encoding == EncodingJSON {
		if err := checkFinite(v); err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadVector, err)
		}
		return b, nil
	}
	// One pass: validate and encode.
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		if u&expMask == expMask { // NaN or ±Inf
			return nil, fmt.Errorf("%w: element %d is %v", ErrBadVector, i, x)
		}
		binary.LittleEndian.PutUint32(b[4*i:], u)
	}
	return b, nil
}

// expMask is the exponent of a float32: all ones for NaN and ±Inf.
const expMask = 0x7f800000

// checkFinite reports the first NaN or infinite element of v.
func checkFinite(v []float32) error {
	for i, x := range v {
		if math.Float32bits(x)&expMask == expMask {
			return fmt.Errorf("%w: element %d is %v", ErrBadVector, i, x)
		}
	}
	return nil
}

// DecodeVector is the inverse of EncodeVector. It accepts both encodings
// (a JSON array starts with '['; a binary vector has a length that is a
// multiple of 4). An empty input decodes to nil.
func DecodeVector(b []byte) ([]float32, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] == '[' {
		var v []float32
		if err := json.Unmarshal(b, &v); err == nil {
			return v, nil
		}
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a float32 vector", ErrBadVector, len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
