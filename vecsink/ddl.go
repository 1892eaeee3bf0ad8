package vecsink

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// CreateSQL returns the CREATE VIRTUAL TABLE statement of the vec0 sidecar of
// spec.Vec (for another vector field v of the spec: CreateSQL(spec.ForVec(v))). Integer keys are the vec0 rowid; text keys are an "id text primary
// key" column. A "deleted" metadata column exists when the source has a
// soft-delete column, followed by the spec's metadata columns.
// The dot metric is stored as l2: vec0 has no inner-product metric, and KNN
// ranks dot models by exact inner product (see KNN).
func CreateSQL(spec *outbox.Spec) (string, error) {
	v := spec.Vec
	if v == nil {
		return "", fmt.Errorf("%w: %s has no vec sidecar", outbox.ErrBadSpec, spec.Source)
	}
	if err := spec.Validate(); err != nil {
		return "", err
	}
	metric := v.Metric
	if metric == outbox.MetricDot {
		metric = outbox.MetricL2
	}
	var cols []string
	if spec.KeyType == outbox.KeyText {
		cols = append(cols, "id text primary key")
	}
	// vec0 parses its column declarations itself and rejects double-quoted
	// names; every name has passed outbox.ValidIdent (in Validate above), so
	// the bare form is safe.
	cols = append(cols, fmt.Sprintf("%s float[%d] distance_metric=%s", v.Column, v.Dim, metric))
	if spec.SoftDelete != "" {
		cols = append(cols, outbox.DeletedColumn+" integer")
	}
	for _, m := range v.Metadata {
		cols = append(cols, m.Name+" "+m.Type)
	}
	if v.Chunked() {
		cols = append(cols, outbox.ChunkStartColumn+" integer", outbox.ChunkEndColumn+" integer")
	}
	return fmt.Sprintf("CREATE VIRTUAL TABLE IF NOT EXISTS %s USING vec0(%s)", outbox.Quote(v.Live()), strings.Join(cols, ", ")), nil
}

// Create creates the vec0 sidecars of spec (one per vector field: Vec and
// MoreVecs) that do not exist.
func Create(ctx context.Context, db outbox.DB, spec *outbox.Spec) error {
	if spec.Vec == nil {
		return fmt.Errorf("%w: %s has no vec sidecar", outbox.ErrBadSpec, spec.Source)
	}
	for _, v := range spec.VecSpecs() {
		q, err := CreateSQL(spec.ForVec(v))
		if err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("vecsink: create %s: %w", v.Live(), err)
		}
	}
	return nil
}

// Drop drops the vec0 sidecars of spec (every vector field's) that exist.
// It is idempotent.
func Drop(ctx context.Context, db outbox.DB, spec *outbox.Spec) error {
	for _, v := range spec.VecSpecs() {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+outbox.Quote(v.Live())); err != nil {
			return fmt.Errorf("vecsink: drop %s: %w", v.Live(), err)
		}
	}
	return nil
}
