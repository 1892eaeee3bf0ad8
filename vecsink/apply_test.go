package vecsink_test

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/outbox/sinktest"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

func dumpVec(spec *outbox.Spec) func(context.Context, outbox.DB) ([]string, error) {
	return func(ctx context.Context, db outbox.DB) ([]string, error) {
		key := "rowid"
		if spec.KeyType == outbox.KeyText {
			key = "id"
		}
		sel := fmt.Sprintf("SELECT %s, vec_to_json(%s)", key, spec.Vec.Column)
		n := 2
		if spec.SoftDelete != "" {
			sel += ", deleted"
			n++
		}
		for _, m := range spec.Vec.Metadata {
			sel += ", " + m.Name
			n++
		}
		rows, err := db.QueryContext(ctx, sel+" FROM "+spec.Vec.Table)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			vals := make([]any, n)
			ptrs := make([]any, n)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprintf("%#v", vals))
		}
		sort.Strings(out)
		return out, rows.Err()
	}
}

func TestTableConformance(t *testing.T) {
	t.Parallel()
	specs := map[string]*outbox.Spec{
		"integer keys, metadata, soft delete": {Version: outbox.SpecVersion, Source: "docs", Key: "id", KeyType: outbox.KeyInteger, SoftDelete: "deleted_at",
			Vec: &outbox.VecSpec{Table: "docs_vec", Column: "embedding", Dim: 3, Metric: outbox.MetricCosine, Encoding: outbox.EncodingBinary,
				Metadata: []outbox.MetaCol{{Name: "score", Type: "float"}, {Name: "cat", Type: "integer"}, {Name: "label", Type: "text"}, {Name: "ok", Type: "boolean"}}}},
		"text keys, json vectors": {Version: outbox.SpecVersion, Source: "notes", Key: "code", KeyType: outbox.KeyText,
			Vec: &outbox.VecSpec{Table: "notes_vec", Column: "emb", Dim: 2, Metric: outbox.MetricDot, Encoding: outbox.EncodingJSON}},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sinktest.Run(t, sinktest.Harness{
				Spec:   spec,
				New:    func(s *outbox.Spec) (outbox.Sink, error) { return vecsink.NewTable(s) },
				Dump:   dumpVec(spec),
				Vector: true,
			})
		})
	}
}

func TestNewTableNeedsVec(t *testing.T) {
	t.Parallel()
	_, err := vecsink.NewTable(&outbox.Spec{Version: outbox.SpecVersion, Source: "a", Key: "id", KeyType: outbox.KeyInteger})
	if err == nil {
		t.Fatal("NewTable accepted a spec without a vec sidecar")
	}
}
