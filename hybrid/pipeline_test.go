package hybrid_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/hybrid"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// The pipeline tests check the queries against sidecars written by the real
// capture plugin and indexer (the other tests fill them by hand), so that the
// two sides agree on the layout.

type pArticle struct {
	ID        uint
	Title     string            `fts5:"tokenize=porter+unicode61"`
	Body      string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=3;metric=dot"`
	DeletedAt gorm.DeletedAt
}

type pNote struct {
	Slug      string            `gorm:"primaryKey"`
	Text      string            `fts5:"contentless=true"`
	Embedding vecsink.Embedding `vec:"dim=2;metric=cosine"`
	DeletedAt gorm.DeletedAt
}

func TestPipelineQueriesSeeIndexedState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &pArticle{}, &pNote{}))
	rng := rand.New(rand.NewPCG(11, 12))

	type state struct {
		text    string
		vec     []float32
		deleted bool
	}
	arts := map[uint]*state{}
	for i := 0; i < 60; i++ {
		a := pArticle{Title: words(rng, 3), Body: words(rng, 8), Embedding: vecsink.Embedding{float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())}}
		require.NoError(t, db.Create(&a).Error)
		arts[a.ID] = &state{text: a.Title + " " + a.Body, vec: a.Embedding}
	}
	for id, s := range arts {
		switch id % 5 {
		case 0:
			require.NoError(t, db.Delete(&pArticle{ID: id}).Error)
			s.deleted = true
		case 1:
			body := words(rng, 8)
			require.NoError(t, db.Model(&pArticle{ID: id}).Update("body", body).Error)
			var a pArticle
			require.NoError(t, db.First(&a, id).Error)
			s.text = a.Title + " " + body
		case 2:
			v := vecsink.Embedding{float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())}
			require.NoError(t, db.Model(&pArticle{ID: id}).Update("embedding", v).Error)
			s.vec = v
		}
	}
	notes := map[string]*state{}
	for i := 0; i < 30; i++ {
		n := pNote{Slug: fmt.Sprintf("n-%02d", i), Text: words(rng, 6), Embedding: vecsink.Embedding{float32(rng.NormFloat64()), float32(rng.NormFloat64())}}
		require.NoError(t, db.Create(&n).Error)
		notes[n.Slug] = &state{text: n.Text, vec: n.Embedding, deleted: i%4 == 0}
		if i%4 == 0 {
			require.NoError(t, db.Delete(&n).Error)
		}
	}

	ix, err := indexer.New(db)
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	_, err = ix.Drain(ctx)
	require.NoError(t, err)

	// vectors: exact inner-product ranking of the live rows' current vectors
	q := []float32{0.3, -1, 0.7}
	type kv struct {
		id  uint
		dot float64
	}
	var want []kv
	for id, s := range arts {
		if !s.deleted {
			var d float64
			for i := range q {
				d += float64(q[i]) * float64(s.vec[i])
			}
			want = append(want, kv{id, d})
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].dot > want[j].dot })
	got, err := vecsink.KNN[pArticle](ctx, db, q, 15)
	require.NoError(t, err)
	require.Len(t, got, 15)
	for i, r := range got {
		require.Equal(t, want[i].id, r.Model.ID, "rank %d", i)
		require.InDelta(t, -want[i].dot, r.Distance, 1e-9)
	}
	withDeleted, err := vecsink.KNN[pArticle](ctx, db, q, 60, vecsink.IncludeDeleted())
	require.NoError(t, err)
	require.Len(t, withDeleted, 60)

	// text: exactly the live rows whose current text has the word
	for _, w := range []string{"alpha", "gamma", "sigma"} {
		var wantIDs []uint
		for id, s := range arts {
			if !s.deleted && slices.Contains(strings.Fields(s.text), w) {
				wantIDs = append(wantIDs, id)
			}
		}
		hits, err := ftssink.Search[pArticle](ctx, db, ftssink.Term(w), ftssink.WithLimit(100), ftssink.WithHighlight("body", "[", "]"))
		require.NoError(t, err)
		var gotIDs []uint
		for i, h := range hits {
			gotIDs = append(gotIDs, h.Model.ID)
			if i > 0 {
				require.LessOrEqual(t, hits[i-1].Rank, h.Rank)
			}
		}
		require.ElementsMatch(t, wantIDs, gotIDs, w)
		require.NotEmpty(t, gotIDs)
	}

	// text keys, contentless FTS, cosine
	var wantNotes []string
	for slug, s := range notes {
		if !s.deleted && slices.Contains(strings.Fields(s.text), "beta") {
			wantNotes = append(wantNotes, slug)
		}
	}
	nh, err := ftssink.Search[pNote](ctx, db, ftssink.Term("beta"), ftssink.WithLimit(100))
	require.NoError(t, err)
	var gotNotes []string
	for _, h := range nh {
		gotNotes = append(gotNotes, h.Model.Slug)
	}
	require.ElementsMatch(t, wantNotes, gotNotes)
	nk, err := vecsink.KNN[pNote](ctx, db, []float32{1, 1}, 100)
	require.NoError(t, err)
	live := 0
	for _, s := range notes {
		if !s.deleted {
			live++
		}
	}
	require.Len(t, nk, live)

	hs, err := hybrid.Search[pNote](ctx, db, []float32{1, 1}, ftssink.Term("beta"), hybrid.WithLimit(100))
	require.NoError(t, err)
	require.Len(t, hs, live, "every live note is a vector candidate")
	for _, r := range hs {
		require.Equal(t, slices.Contains(wantNotes, r.Model.Slug), r.TextRank > 0, r.Model.Slug)
	}
}
