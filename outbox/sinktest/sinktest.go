// Package sinktest is the conformance test every outbox.Sink passes: applying
// changes incrementally converges to exactly what a rebuild from the source
// rows and the event log produces, applying twice or in replay changes
// nothing, and per-key failures are reported as *outbox.KeyError.
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

// Harness describes the sink under test.
type Harness struct {
	// Spec is the registry spec; its source table is created by Run with
	// the key, the soft-delete column and the sink's columns.
	Spec *outbox.Spec
	// New builds the sink.
	New func(*outbox.Spec) (outbox.Sink, error)
	// Dump returns the sidecar's contents in a canonical form, one string
	// per entry, sorted.
	Dump func(ctx context.Context, db outbox.DB) ([]string, error)
	// Vector reports whether the sink stores vectors (then every change
	// carries one, and bad vectors must be rejected per key).
	Vector bool
}

// Run runs the conformance test.
func Run(t *testing.T, h Harness) {
	t.Helper()
	ctx := context.Background()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, outbox.EnsureSchema(ctx, sqlDB))
	sink, err := h.New(h.Spec)
	require.NoError(t, err)
	spec := h.Spec
	intKeys := spec.KeyType == outbox.KeyInteger
	cols := sink.Columns()
	decl := []string{outbox.Quote(spec.Key) + " INTEGER PRIMARY KEY"}
	if !intKeys {
		decl[0] = outbox.Quote(spec.Key) + " TEXT PRIMARY KEY"
	}
	if spec.SoftDelete != "" {
		decl = append(decl, outbox.Quote(spec.SoftDelete))
	}
	for _, c := range cols {
		decl = append(decl, outbox.Quote(c))
	}
	_, err = sqlDB.Exec(fmt.Sprintf("CREATE TABLE %s (%s)", outbox.Quote(spec.Source), strings.Join(decl, ", ")))
	require.NoError(t, err)

	ok, err := sink.Exists(ctx, sqlDB)
	require.NoError(t, err)
	require.False(t, ok, "no sidecar before the first rebuild")
	n, err := sink.Rebuild(ctx, sqlDB, outbox.RebuildOptions{})
	require.NoError(t, err)
	require.Zero(t, n)
	ok, err = sink.Exists(ctx, sqlDB)
	require.NoError(t, err)
	require.True(t, ok)

	r := rand.New(rand.NewPCG(1, 2))
	keyOf := func(i int) any {
		if intKeys {
			return int64(i)
		}
		return fmt.Sprintf("k%03d", i)
	}
	value := func(c string) any {
		switch r.IntN(4) {
		case 0:
			return int64(r.IntN(100))
		case 1:
			return float64(r.IntN(100)) / 4
		default:
			return fmt.Sprintf("word%d text%d %s", r.IntN(9), r.IntN(9), c)
		}
	}
	vector := func() []byte {
		if !h.Vector || spec.Vec == nil {
			return []byte{}
		}
		if r.IntN(5) == 0 {
			return []byte{}
		}
		v := make([]float32, spec.Vec.Dim)
		for i := range v {
			v[i] = float32(r.IntN(1000)) / 8
		}
		b, err := outbox.EncodeVector(v, spec.Vec.Dim, spec.Vec.Encoding)
		require.NoError(t, err)
		return b
	}
	indexed := map[any][]any{} // what the sink last indexed, for before-images
	exists := map[any]bool{}
	hasVec := map[any]bool{}
	apply := func(changes []outbox.Change, opts outbox.ApplyOptions) {
		t.Helper()
		require.NoError(t, sink.Apply(ctx, sqlDB, changes, opts))
	}
	dump := func() []string {
		t.Helper()
		d, err := h.Dump(ctx, sqlDB)
		require.NoError(t, err)
		return d
	}
	for round := range 8 {
		var changes []outbox.Change
		var events []outbox.Event
		for i := 1; i <= 20; i++ {
			if r.IntN(3) > 0 {
				continue
			}
			k := keyOf(i)
			c := outbox.Change{Key: k, Old: indexed[k]}
			switch r.IntN(4) {
			case 0: // hard delete
				_, err := sqlDB.Exec(fmt.Sprintf("DELETE FROM %s WHERE %s = ?", outbox.Quote(spec.Source), outbox.Quote(spec.Key)), k)
				require.NoError(t, err)
				delete(indexed, k)
				delete(exists, k)
				delete(hasVec, k)
				events = append(events, outbox.Event{Table: spec.Source, Key: k, Op: outbox.OpDelete})
			default: // upsert with current values, maybe soft-deleted, maybe a new vector
				c.Exists = true
				c.Deleted = spec.SoftDelete != "" && r.IntN(3) == 0
				c.Values = make([]any, len(cols))
				for j, col := range cols {
					c.Values[j] = value(col)
				}
				// A row that is created carries its vector state, as the
				// event contract requires.
				if !exists[k] || r.IntN(2) == 0 {
					c.Vec = vector()
				}
				exists[k] = true
				if c.Vec != nil {
					hasVec[k] = len(c.Vec) > 0
				}
				names := []string{outbox.Quote(spec.Key)}
				args := []any{k}
				if spec.SoftDelete != "" {
					names = append(names, outbox.Quote(spec.SoftDelete))
					var del any
					if c.Deleted {
						del = "2024-01-01"
					}
					args = append(args, del)
				}
				for j, col := range cols {
					names = append(names, outbox.Quote(col))
					args = append(args, c.Values[j])
				}
				_, err := sqlDB.Exec(fmt.Sprintf("INSERT OR REPLACE INTO %s (%s) VALUES (%s)", outbox.Quote(spec.Source), strings.Join(names, ", "), outbox.Placeholders(len(names))), args...)
				require.NoError(t, err)
				indexed[k] = c.Values
				vec := c.Vec
				events = append(events, outbox.Event{Table: spec.Source, Key: k, Op: outbox.OpUpsert, Vec: vec})
			}
			changes = append(changes, c)
		}
		require.NoError(t, outbox.Append(ctx, sqlDB, events))
		apply(changes, outbox.ApplyOptions{})
		got := dump()
		// Replay and re-assertion change nothing (for changes that carry
		// no before-image, which external content would reject).
		apply(changes, outbox.ApplyOptions{Replay: true})
		require.Equal(t, got, dump(), "round %d: replay changed the sidecar", round)
		// A rebuild from the source rows and the log gives the same.
		_, err := sink.Rebuild(ctx, sqlDB, outbox.RebuildOptions{BatchSize: 1 + r.IntN(7)})
		require.NoError(t, err)
		require.Equal(t, got, dump(), "round %d: incremental apply differs from a rebuild", round)
		cnt, err := sink.Count(ctx, sqlDB)
		require.NoError(t, err)
		want := len(exists)
		if h.Vector {
			want = 0
			for _, v := range hasVec {
				if v {
					want++
				}
			}
		}
		require.EqualValues(t, want, cnt, "round %d: Count", round)
	}

	// Per-key failures name the key.
	bad := outbox.Change{Key: keyOf(1), Exists: true, Values: []any{}}
	if len(cols) == 0 {
		bad.Values = nil
		bad.Vec = []byte{1, 2, 3}
	}
	err = sink.Apply(ctx, sqlDB, []outbox.Change{bad}, outbox.ApplyOptions{})
	if len(cols) > 0 || h.Vector {
		var ke *outbox.KeyError
		require.True(t, errors.As(err, &ke), "want a *outbox.KeyError, got %v", err)
		require.Equal(t, keyOf(1), ke.Key)
		require.Equal(t, spec.Source, ke.Table)
	}
	if h.Vector {
		v := make([]float32, spec.Vec.Dim+1)
		b, err := outbox.EncodeVector(v, len(v), outbox.EncodingBinary)
		require.NoError(t, err)
		vals := make([]any, len(cols))
		err = sink.Apply(ctx, sqlDB, []outbox.Change{{Key: keyOf(2), Exists: true, Values: vals, Vec: b}}, outbox.ApplyOptions{})
		var ke *outbox.KeyError
		require.True(t, errors.As(err, &ke), "want a *outbox.KeyError for a wrong-size vector, got %v", err)
	}
}
