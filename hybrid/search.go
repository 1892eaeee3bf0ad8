package hybrid

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/gormq"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
)

// Search runs vecsink's KNN with vector and ftssink's full-text search with
// q on model T (which needs both a vec tag and fts5 tags), takes
// WithCandidates results from each (default 50), fuses the two rankings with
// reciprocal-rank fusion and returns the best WithLimit models (default 10),
// best first, each with both sides' scores (see Result). The fusion is RRF
// (the function of this package) over the two candidate lists, so ties of
// the fused score are broken by primary key.
//
// Both side queries run on db's connection (or transaction); then the
// models are loaded with one gorm query on db, as in vecsink.KNN. Rows whose
// source row vanished are skipped (another query loads the next candidates
// when that leaves fewer than the limit). Soft-deleted rows are excluded
// unless IncludeDeleted is given. Like KNN and Search, it sees what the
// indexer has applied: call the indexer's Sync first for read-your-writes.
//
// On a model with several vector fields, pick the one the vector side
// searches with WithVecOptions(vecsink.WithField("BodyEmb")).
//
// Errors are those of vecsink.KNN and ftssink.Search (vecsink.ErrBadVector,
// vecsink.ErrNoVec, vecsink.ErrAmbiguousField, ftssink.ErrNoFTS,
// ftssink.ErrInvalidQuery, …) and ErrInvalidOption.
func Search[T any](ctx context.Context, db *gorm.DB, vector []float32, q ftssink.Query, opts ...Option) ([]Result[T], error) {
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t, err := gormq.Resolve(ctx, db, new(T))
	if err != nil {
		return nil, fmt.Errorf("hybrid: search: %w", err)
	}
	if t.Spec.Vec == nil {
		return nil, fmt.Errorf("%w: model %s (table %s) has no vec tag", vecsink.ErrNoVec, t.Schema.Name, t.Table)
	}
	if t.Spec.FTS == nil {
		return nil, fmt.Errorf("%w: model %s (table %s) has no fts5 tag", ftssink.ErrNoFTS, t.Schema.Name, t.Table)
	}
	vecOpts := slices.Clone(cfg.vecOpts)
	textOpts := slices.Clone(cfg.textOpts)
	if cfg.includeDeleted {
		vecOpts = append(vecOpts, vecsink.IncludeDeleted())
		textOpts = append(textOpts, ftssink.IncludeDeleted())
	}
	textOpts = append(textOpts, ftssink.WithLimit(cfg.candidates), ftssink.WithOffset(0))

	ns, err := vecsink.Neighbors(ctx, t.Conn, t.Spec, vector, cfg.candidates, vecOpts...)
	if err != nil {
		return nil, fmt.Errorf("hybrid: vector side: %w", err)
	}
	ms, err := ftssink.Matches(ctx, t.Conn, t.Spec, q, textOpts...)
	if err != nil {
		return nil, fmt.Errorf("hybrid: full-text side: %w", err)
	}
	fused, err := fuse(t.Spec.KeyType, ns, ms, cfg)
	if err != nil {
		return nil, err
	}

	out := make([]Result[T], 0, min(cfg.limit, len(fused)))
	for next := 0; len(out) < cfg.limit && next < len(fused); {
		batch := fused[next:min(next+cfg.limit-len(out), len(fused))]
		next += len(batch)
		keys := make([]any, len(batch))
		for i, f := range batch {
			keys[i] = f.key
		}
		models, ok, err := gormq.Load[T](ctx, db, t, keys, cfg.includeDeleted)
		if err != nil {
			return nil, fmt.Errorf("hybrid: search: %w", err)
		}
		for i, f := range batch {
			if ok[i] {
				r := f.Result
				out = append(out, Result[T]{Model: models[i], Score: r.Score, VecRank: r.VecRank, Distance: r.Distance,
					TextRank: r.TextRank, BM25: r.BM25, Snippets: r.Snippets, Highlights: r.Highlights})
			}
		}
	}
	return out, nil
}

// fused is a Result before its model is loaded.
type fused struct {
	key any
	Result[struct{}]
}

// fuse merges the two rankings with RRF (ties by key) and attaches what
// each side said about each key.
func fuse(keyType string, ns []vecsink.Neighbor, ms []ftssink.Match, cfg *config) ([]*fused, error) {
	if keyType == outbox.KeyText {
		return fuseAs[string](ns, ms, cfg)
	}
	return fuseAs[int64](ns, ms, cfg)
}

func fuseAs[K cmp.Ordered](ns []vecsink.Neighbor, ms []ftssink.Match, cfg *config) ([]*fused, error) {
	lists := [][]K{make([]K, len(ns)), make([]K, len(ms))}
	for i, n := range ns {
		k, ok := n.Key.(K)
		if !ok {
			return nil, fmt.Errorf("hybrid: vector side returned key %v of type %T", n.Key, n.Key)
		}
		lists[0][i] = k
	}
	for i, m := range ms {
		k, ok := m.Key.(K)
		if !ok {
			return nil, fmt.Errorf("hybrid: full-text side returned key %v of type %T", m.Key, m.Key)
		}
		lists[1][i] = k
	}
	fs, err := RRF(lists, RRFK(cfg.rrfK), RRFWeights(cfg.vecW, cfg.textW))
	if err != nil {
		return nil, err
	}
	out := make([]*fused, len(fs))
	for i, f := range fs {
		r := &fused{key: f.Key}
		r.Score, r.VecRank, r.TextRank = f.Score, f.Ranks[0], f.Ranks[1]
		r.Distance, r.BM25 = math.NaN(), math.NaN()
		if r.VecRank > 0 {
			r.Distance = ns[r.VecRank-1].Distance
		}
		if r.TextRank > 0 {
			m := ms[r.TextRank-1]
			r.BM25, r.Snippets, r.Highlights = m.Rank, m.Snippets, m.Highlights
		}
		out[i] = r
	}
	return out, nil
}
