package indexer

import (
	"context"
	"fmt"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// table is what the indexer knows about one registered source table.
type table struct {
	raw   string // the registry JSON it was built from
	spec  *outbox.Spec
	sinks []outbox.Sink
	vecs  []*vecsink.Table // one per vector field (Spec.Vec, then MoreVecs); empty without
	// vecOf maps an oi_events.field value ("" = the first field) to its sink.
	vecOf map[string]*vecsink.Table
	// external is the FTS5 sink when it is external content (its apply
	// needs before-images and key floors), else nil.
	external *ftssink.Table
	err      error          // the registry entry is unusable
	cols     []string       // union of the sinks' source columns
	col      map[string]int // column -> index in cols
}

// registry caches parsed registry entries by their JSON text.
type registry map[string]*table

// load reads oi_registry and returns the tables, reusing parsed entries
// whose JSON did not change.
func (r *registry) load(ctx context.Context, db outbox.DB) (map[string]*table, error) {
	rows, err := db.QueryContext(ctx, `SELECT source, spec FROM oi_registry`)
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	defer rows.Close()
	if *r == nil {
		*r = registry{}
	}
	out := map[string]*table{}
	for rows.Next() {
		var src, raw string
		if err := rows.Scan(&src, &raw); err != nil {
			return nil, fmt.Errorf("read registry: %w", err)
		}
		t, ok := (*r)[src]
		if !ok || t.raw != raw {
			t = newTable(src, raw)
			(*r)[src] = t
		}
		out[src] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	for src := range *r {
		if _, ok := out[src]; !ok {
			delete(*r, src)
		}
	}
	return out, nil
}

func newTable(src, raw string) *table {
	t := &table{raw: raw, col: map[string]int{}}
	spec, err := outbox.ParseSpec(raw)
	if err == nil && spec.Source != src {
		err = fmt.Errorf("%w: registry row %q holds the spec of %q", outbox.ErrBadSpec, src, spec.Source)
	}
	if err != nil {
		t.err = fmt.Errorf("registry entry of %s: %w", src, err)
		return t
	}
	t.spec = spec
	if spec.Vec != nil {
		vs, err := vecsink.NewTables(spec)
		if err != nil {
			t.err = err
			return t
		}
		t.vecs = vs
		t.vecOf = map[string]*vecsink.Table{}
		for _, v := range vs {
			t.vecOf[v.Field()] = v
			t.sinks = append(t.sinks, v)
		}
	}
	if spec.FTS != nil {
		f, err := ftssink.NewTable(spec)
		if err != nil {
			t.err = err
			return t
		}
		t.sinks = append(t.sinks, f)
		if spec.FTS.Mode == outbox.ModeExternal {
			t.external = f
		}
	}
	for _, s := range t.sinks {
		for _, c := range s.Columns() {
			if _, ok := t.col[c]; !ok {
				t.col[c] = len(t.cols)
				t.cols = append(t.cols, c)
			}
		}
	}
	return t
}
