package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// RawEvent is a row of oi_events (or the event columns of oi_deadletters) as
// stored, before decoding. Reading raw rows lets the indexer park one
// malformed event instead of failing a whole batch.
type RawEvent struct {
	ID    int64
	Table string
	Key   any     // as stored: int64, string, or anything a hand-written row holds
	Op    int64   // as stored
	Vec   []byte  // nil for SQL NULL
	Old   *string // JSON before-image, nil for SQL NULL
	At    int64   // unix nanoseconds
	Field *string // which vector Vec is (see Event.Field), nil for SQL NULL
}

// RawEventColumns is the column list RawEvent scans, in order.
const RawEventColumns = "id, tbl, key, op, vec, old, at, field"

// ScanRawEvent scans one row selected with RawEventColumns.
func ScanRawEvent(s interface{ Scan(dest ...any) error }) (RawEvent, error) {
	var r RawEvent
	if err := s.Scan(&r.ID, &r.Table, &r.Key, &r.Op, &r.Vec, &r.Old, &r.At, &r.Field); err != nil {
		return r, fmt.Errorf("outbox: scan event: %w", err)
	}
	return r, nil
}

// ReadRawEvents returns up to limit rows of oi_events with id > after, in id
// order, without decoding them.
func ReadRawEvents(ctx context.Context, db DB, after int64, limit int) ([]RawEvent, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+RawEventColumns+` FROM oi_events WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: read events: %w", err)
	}
	defer rows.Close()
	out := make([]RawEvent, 0, min(limit, 4096))
	for rows.Next() {
		r, err := ScanRawEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: read events: %w", err)
	}
	return out, nil
}

// Decode validates the row and converts it to an Event. Numbers in the
// before-image keep their exact SQL type (int64 stays int64), because
// FTS5's 'delete' must be given exactly the values that were indexed.
func (r RawEvent) Decode() (Event, error) {
	e := Event{ID: r.ID, Table: r.Table, Op: Op(r.Op), Vec: r.Vec, At: time.Unix(0, r.At)}
	if r.Field != nil {
		e.Field = *r.Field
	}
	k, err := NormalizeKey(r.Key)
	if err != nil {
		return e, fmt.Errorf("%w: event %d: %v", ErrBadEvent, r.ID, err)
	}
	e.Key = k
	if !e.Op.Valid() {
		return e, fmt.Errorf("%w: event %d: unknown op %d", ErrBadEvent, r.ID, r.Op)
	}
	if r.Old != nil {
		if e.Old, err = DecodeOldExact(*r.Old); err != nil {
			return e, fmt.Errorf("event %d: %w", r.ID, err)
		}
	}
	return e, nil
}

// DecodeOldExact parses a before-image like DecodeOld, but returns JSON
// integers as int64 and other numbers as float64, so that the values bound
// to FTS5's 'delete' have the type the source column held.
func DecodeOldExact(s string) ([]any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var out []any
	if err := d.Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: old column: %v", ErrBadEvent, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: old column: data after the JSON array", ErrBadEvent)
	}
	if out == nil {
		return nil, fmt.Errorf("%w: old column: not a JSON array", ErrBadEvent)
	}
	for i, v := range out {
		switch x := v.(type) {
		case json.Number:
			if n, err := x.Int64(); err == nil {
				out[i] = n
			} else if f, err := x.Float64(); err == nil {
				out[i] = f
			} else {
				return nil, fmt.Errorf("%w: old column: value %d: %v", ErrBadEvent, i, err)
			}
		case bool:
			if x {
				out[i] = int64(1)
			} else {
				out[i] = int64(0)
			}
		case string, nil:
		default:
			return nil, fmt.Errorf("%w: old column: value %d is a %T, want a scalar", ErrBadEvent, i, v)
		}
	}
	return out, nil
}
