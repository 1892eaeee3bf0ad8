package tests

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/embedtest"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Issue 15: vectors derived from text (from=) follow the text through
// inserts, updates, deletes, restarts, outages and bulk loads.

const embDim = 8

type embArticle struct {
	ID        uint
	Title     string `fts5:""`
	Body      string `fts5:""`
	Views     int
	Embedding vecsink.Embedding `vec:"dim=8;metric=cosine;from=Title,Body"`
}

// embNote has a text key, a supplied vector and a derived second one.
type embNote struct {
	ID      string `gorm:"primaryKey"`
	Text    string
	Own     vecsink.Embedding `vec:"dim=3;metric=l2"`
	Derived vecsink.Embedding `vec:"dim=8;metric=l2;from=Text;column=derived"`
}

func embOpen(t testing.TB, path string) *gorm.DB {
	t.Helper()
	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &embArticle{}, &embNote{}))
	return db
}

// wantVec is the vector HashEmbedder(dim) gives the text of values, or nil
// for blank text.
func wantVec(t *testing.T, dim int, encoding string, values ...any) []byte {
	t.Helper()
	return wantVecBy(t, vecsink.HashEmbedder(dim), dim, encoding, values...)
}

// wantVecBy is wantVec for the vectors of embedder e.
func wantVecBy(t *testing.T, e vecsink.Embedder, dim int, encoding string, values ...any) []byte {
	t.Helper()
	text := outbox.EmbedText(values)
	if strings.TrimSpace(text) == "" {
		return nil
	}
	v, err := e.Embed(context.Background(), []string{text})
	require.NoError(t, err)
	b, err := outbox.EncodeVector(v[0], dim, encoding)
	require.NoError(t, err)
	return b
}

// embIndexed opens a new database with the embedding models and an
// indexer on it that embeds with HashEmbedder (closed with the test).
func embIndexed(t *testing.T) (*gorm.DB, *indexer.Indexer) {
	t.Helper()
	db := embOpen(t, testdb.Path(t))
	ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)))
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return db, ix
}

// checkArticles asserts that every article has exactly the vector of its
// current text (none for blank text and for the keys in parked), and that
// vec0 holds nothing else.
func checkArticles(t *testing.T, db *gorm.DB, parked map[uint]bool) {
	t.Helper()
	checkArticlesBy(t, db, parked, vecsink.HashEmbedder(embDim))
}

// checkArticlesBy is checkArticles for the vectors of embedder e.
func checkArticlesBy(t *testing.T, db *gorm.DB, parked map[uint]bool, e vecsink.Embedder) {
	t.Helper()
	var rows []embArticle
	require.NoError(t, db.Order("id").Find(&rows).Error)
	got := map[int64][]byte{}
	sqlDB, err := db.DB()
	require.NoError(t, err)
	live, err := outbox.LiveTable(context.Background(), sqlDB, "emb_articles_vec")
	require.NoError(t, err)
	r, err := sqlDB.Query(`SELECT rowid, embedding FROM ` + outbox.Quote(live))
	require.NoError(t, err)
	for r.Next() {
		var k int64
		var b []byte
		require.NoError(t, r.Scan(&k, &b))
		got[k] = b
	}
	require.NoError(t, r.Err())
	require.NoError(t, r.Close())
	n := 0
	for _, a := range rows {
		want := wantVecBy(t, e, embDim, outbox.EncodingBinary, a.Title, a.Body)
		if parked[a.ID] {
			want = nil
		}
		if want == nil {
			require.NotContains(t, got, int64(a.ID), "article %d (%q, %q) must have no vector", a.ID, a.Title, a.Body)
			continue
		}
		n++
		require.Equal(t, want, got[int64(a.ID)], "article %d (%q, %q)", a.ID, a.Title, a.Body)
	}
	require.Len(t, got, n, "vec0 holds vectors of rows that are gone")
}

func TestEmbedFromFollowsText(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := testdb.Path(t)
	db := embOpen(t, path)

	// The application never writes a derived vector.
	err := db.Create(&embArticle{Title: "x", Embedding: vecsink.Embedding{1, 2, 3, 4, 5, 6, 7, 8}}).Error
	require.ErrorIs(t, err, gormplugin.ErrDerivedVector)
	require.ErrorContains(t, err, "Embedding")
	var n int64
	require.NoError(t, db.Model(&embArticle{}).Count(&n).Error)
	require.Zero(t, n)
	require.NoError(t, db.Raw(`SELECT count(*) FROM oi_events`).Scan(&n).Error)
	require.Zero(t, n, "the rejected write left no event")

	// Without an embedder the indexer refuses to start.
	ix0, err := indexer.New(db)
	require.NoError(t, err)
	_, err = ix0.Drain(ctx)
	require.ErrorIs(t, err, indexer.ErrNoEmbedder)
	require.ErrorContains(t, err, "emb_articles")
	require.NoError(t, ix0.Close())
	_, err = indexer.Start(ctx, db)
	require.ErrorIs(t, err, indexer.ErrNoEmbedder)

	ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)))
	require.NoError(t, err)
	defer ix.Close()
	arts := []embArticle{{Title: "red apple", Body: "sweet fruit"}, {Title: "green pear"}, {Title: " ", Body: ""}, {Title: "plum", Body: "dark"}}
	require.NoError(t, db.Create(&arts).Error)
	require.NoError(t, db.Create(&embNote{ID: "007", Text: "bond james", Own: vecsink.Embedding{1, 2, 3}}).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)
	st, _ := ix.EmbedStatus()
	require.Equal(t, int64(4), st.Texts, "three articles and one note have text")

	// An update of a column the vector does not depend on costs no call;
	// an update of a from column re-embeds that key only; a Save of the
	// same text costs no call.
	require.NoError(t, db.Model(&arts[0]).Update("views", 7).Error)
	require.NoError(t, db.Model(&arts[1]).Update("body", "crisp").Error)
	require.NoError(t, db.Save(&arts[3]).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)
	st, _ = ix.EmbedStatus()
	require.Equal(t, int64(5), st.Texts)

	// Blank text removes the vector; text again brings one; delete removes it.
	require.NoError(t, db.Model(&arts[1]).Updates(map[string]any{"title": "", "body": ""}).Error)
	require.NoError(t, db.Model(&arts[2]).Update("title", "now words").Error)
	require.NoError(t, db.Delete(&arts[3]).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)

	// Delete and re-insert the same key with the same text: a new vector.
	require.NoError(t, db.Delete(&arts[0]).Error)
	require.NoError(t, db.Create(&embArticle{ID: arts[0].ID, Title: arts[0].Title, Body: arts[0].Body}).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)

	// The note: its supplied vector is untouched, its derived one follows
	// the text; a derived vector in an update is refused.
	sqlDB, _ := db.DB()
	var own, der []byte
	require.NoError(t, sqlDB.QueryRow(`SELECT embedding FROM emb_notes_vec WHERE id = '007'`).Scan(&own))
	require.NoError(t, sqlDB.QueryRow(`SELECT derived FROM emb_notes_derived_vec WHERE id = '007'`).Scan(&der))
	wantOwn, _ := outbox.EncodeVector([]float32{1, 2, 3}, 3, outbox.EncodingBinary)
	require.Equal(t, wantOwn, own)
	require.Equal(t, wantVec(t, embDim, outbox.EncodingBinary, "bond james"), der)
	err = db.Model(&embNote{ID: "007"}).Update("derived", vecsink.Embedding{1, 2, 3, 4, 5, 6, 7, 8}).Error
	require.ErrorIs(t, err, gormplugin.ErrDerivedVector)
	err = db.Model(&embNote{ID: "007"}).Update("derived", gormplugin.ClearVector).Error
	require.ErrorIs(t, err, gormplugin.ErrDerivedVector)

	status, err := ix.Status(ctx)
	require.NoError(t, err)
	require.Zero(t, status.EmbedQueued)
}

// TestEmbedBackfill: rows that exist before Migrate get vectors, and an
// interrupted backfill resumes.
func TestEmbedBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := testdb.Path(t)
	plain := testdb.Open(t, path)
	require.NoError(t, plain.AutoMigrate(&embArticle{}))
	var rows []embArticle
	for i := range 2500 {
		rows = append(rows, embArticle{Title: fmt.Sprintf("title %d", i), Body: fmt.Sprintf("body %d word%d", i, i%7)})
	}
	require.NoError(t, plain.CreateInBatches(rows, 500).Error)
	db := embOpen(t, path)

	ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)), indexer.WithEmbedRound(300))
	require.NoError(t, err)
	// Interrupt the first drain early: a context that ends after a few
	// rounds.
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			st, _ := ix.EmbedStatus()
			if st.Rounds >= 2 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err = ix.Drain(cctx)
	require.Error(t, err)
	require.NoError(t, ix.Close())

	ix2, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)))
	require.NoError(t, err)
	defer ix2.Close()
	_, err = ix2.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)
	st1, _ := ix.EmbedStatus()
	st2, _ := ix2.EmbedStatus()
	require.Positive(t, st1.Embedded, "the first drain embedded some rows before it was interrupted")
	require.Equal(t, int64(2500), st1.Embedded+st2.Embedded, "a key embedded before the restart is not embedded again")
}

// TestEmbedHTTPFaults runs both APIs against a fake service that answers
// 429 with Retry-After, 500s, too slowly (client timeouts), a wrong
// dimension for one text, and goes away for a while, while a worker runs
// and the application writes: at the end every row has the vector of its
// current text exactly, except the one text the service can never embed,
// which is parked with the provider's message.
func TestEmbedHTTPFaults(t *testing.T) {
	t.Parallel()
	for _, api := range []string{"openai", "ollama"} {
		t.Run(api, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv, err := embedtest.New(func(s string) []float32 {
				v, _ := vecsink.HashEmbedder(embDim).Embed(ctx, []string{s})
				return v[0]
			}, 2*time.Millisecond)
			require.NoError(t, err)
			defer srv.Close()
			const poison = "poison pill"
			srv.SetFault(func(n int64, texts []string) embedtest.Fault {
				for _, s := range texts {
					if strings.Contains(s, poison) {
						return embedtest.Fault{WrongDim: s}
					}
				}
				switch n % 7 {
				case 1:
					return embedtest.Fault{Status: 429, RetryAfter: "0"}
				case 3:
					return embedtest.Fault{Status: 503}
				case 5:
					return embedtest.Fault{Sleep: 400 * time.Millisecond} // beyond the client timeout
				}
				return embedtest.Fault{}
			})
			var client vecsink.Embedder
			if api == "openai" {
				client, err = vecsink.NewOpenAIEmbedder(srv.URL()+"/v1", "m", vecsink.WithDimensions(embDim), vecsink.WithRequestTimeout(150*time.Millisecond))
			} else {
				client, err = vecsink.NewOllamaEmbedder(srv.URL(), "m", vecsink.WithDimensions(embDim), vecsink.WithRequestTimeout(150*time.Millisecond))
			}
			require.NoError(t, err)
			db := embOpen(t, testdb.Path(t))
			w, err := indexer.Start(ctx, db,
				indexer.WithEmbedder(client, vecsink.WithBatchSize(4), vecsink.WithConcurrency(3), vecsink.WithRetryBackoff(5*time.Millisecond, 50*time.Millisecond), vecsink.WithMaxRetryTime(0)),
				indexer.WithPollInterval(10*time.Millisecond), indexer.WithEmbedRound(16))
			require.NoError(t, err)
			defer w.Close()

			rng := rand.New(rand.NewPCG(1, uint64(len(api))))
			var ids []uint
			var poisonID uint
			for i := range 120 {
				switch {
				case i == 30:
					a := embArticle{Title: poison, Body: "x"}
					require.NoError(t, db.Create(&a).Error)
					poisonID = a.ID
				case i == 60:
					srv.GoAway(300 * time.Millisecond)
				case len(ids) == 0 || rng.IntN(3) == 0:
					a := embArticle{Title: fmt.Sprintf("t%d", i), Body: fmt.Sprintf("word%d body", rng.IntN(20))}
					require.NoError(t, db.Create(&a).Error)
					ids = append(ids, a.ID)
				case rng.IntN(5) == 0:
					j := rng.IntN(len(ids))
					require.NoError(t, db.Delete(&embArticle{}, ids[j]).Error)
					ids = append(ids[:j], ids[j+1:]...)
				default:
					id := ids[rng.IntN(len(ids))]
					require.NoError(t, db.Model(&embArticle{ID: id}).Update("body", fmt.Sprintf("edit %d", i)).Error)
				}
				time.Sleep(time.Millisecond)
			}
			// Wait for the queue to empty and the log to be applied.
			require.Eventually(t, func() bool {
				st, err := w.Indexer().Status(ctx, indexer.WithoutCounts())
				return err == nil && st.EmbedQueued == 0 && st.Pending == 0
			}, 60*time.Second, 20*time.Millisecond)
			require.NoError(t, w.Sync(ctx))
			checkArticles(t, db, map[uint]bool{poisonID: true})

			dls, err := w.Indexer().DeadLetters(ctx)
			require.NoError(t, err)
			require.Len(t, dls, 1)
			require.Equal(t, int64(poisonID), dls[0].Key)
			require.Contains(t, dls[0].Error, outbox.EmbedFailure)
			require.Contains(t, dls[0].Error, "dim")
			st, _ := w.Indexer().EmbedStatus()
			require.Positive(t, st.TransientErrs, "the injected faults were seen")

			// The poisoned row is fixed by the application: its dead letter
			// goes and it gets its vector.
			require.NoError(t, db.Model(&embArticle{ID: poisonID}).Update("title", "cured").Error)
			require.Eventually(t, func() bool {
				st, err := w.Indexer().Status(ctx, indexer.WithoutCounts())
				return err == nil && st.EmbedQueued == 0 && st.Pending == 0 && st.DeadLetters == 0
			}, 30*time.Second, 20*time.Millisecond)
			require.NoError(t, w.Sync(ctx))
			checkArticles(t, db, nil)
		})
	}
}

// TestEmbedNeverHoldsWriteLock: while the service takes long to answer,
// application writes go through at once.
func TestEmbedNeverHoldsWriteLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := embedtest.New(func(s string) []float32 {
		v, _ := vecsink.HashEmbedder(embDim).Embed(ctx, []string{s})
		return v[0]
	}, 2*time.Second)
	require.NoError(t, err)
	defer srv.Close()
	client, err := vecsink.NewOpenAIEmbedder(srv.URL()+"/v1", "m")
	require.NoError(t, err)
	db := embOpen(t, testdb.Path(t))
	w, err := indexer.Start(ctx, db, indexer.WithEmbedder(client), indexer.WithPollInterval(5*time.Millisecond))
	require.NoError(t, err)
	defer w.Close()
	var worst time.Duration
	for i := range 40 {
		t0 := time.Now()
		require.NoError(t, db.Create(&embArticle{Title: fmt.Sprintf("w%d", i)}).Error)
		worst = max(worst, time.Since(t0))
		time.Sleep(5 * time.Millisecond)
	}
	// Every request takes 2 s: a write that waited on one would take at
	// least that long (the bound leaves room for a loaded test machine).
	require.Less(t, worst, 1500*time.Millisecond, "a write waited on an embedding request")
	require.Eventually(t, func() bool {
		st, err := w.Indexer().Status(ctx, indexer.WithoutCounts())
		return err == nil && st.EmbedQueued == 0 && st.Pending == 0
	}, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, w.Sync(ctx))
	checkArticles(t, db, nil)
}

// TestEmbedRebuild: a rebuild reuses the vectors of unchanged text (no
// embedding call) and embeds the text changed by events it skipped.
func TestEmbedRebuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, ix := embIndexed(t)
	var arts []embArticle
	for i := range 50 {
		arts = append(arts, embArticle{Title: fmt.Sprintf("a%d", i), Body: "text"})
	}
	require.NoError(t, db.Create(&arts).Error)
	_, err := ix.Drain(ctx)
	require.NoError(t, err)
	require.NoError(t, ix.Rebuild(ctx, "emb_articles"))
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)
	st, _ := ix.EmbedStatus()
	require.Equal(t, int64(50), st.Texts, "the rebuild reused every vector")

	// Pending changes the rebuild floor skips: a new text, and a delete
	// and re-insert of the same text.
	require.NoError(t, db.Model(&arts[0]).Update("title", "changed").Error)
	require.NoError(t, db.Delete(&arts[1]).Error)
	require.NoError(t, db.Create(&embArticle{ID: arts[1].ID, Title: arts[1].Title, Body: arts[1].Body}).Error)
	require.NoError(t, ix.Rebuild(ctx, "emb_articles"))
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)
	st, _ = ix.EmbedStatus()
	require.Equal(t, int64(52), st.Texts, "only the two changed rows were embedded")
}

// flipEmbedder is another embedding model of HashEmbedder's dimension: the
// same vectors, negated (the embedder's type names it in the text hashes).
type flipEmbedder struct{}

func (flipEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	vs, err := vecsink.HashEmbedder(embDim).Embed(ctx, texts)
	for _, v := range vs {
		for i := range v {
			v[i] = -v[i]
		}
	}
	return vs, err
}

// TestEmbedRebuildOnlineNewModel: after the embedding model changed, a
// Rebuild re-embeds every row online, while the application writes: the
// table's sidecars are built beside the live ones and swapped in, every
// row is queued for embedding after the swap (the requeue phase), and in
// the end every vector is the new model's of the row's current text.
func TestEmbedRebuildOnlineNewModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := testdb.Path(t)
	db := embOpen(t, path)
	ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)))
	require.NoError(t, err)
	arts := make([]embArticle, 120)
	for i := range arts {
		arts[i] = embArticle{Title: fmt.Sprintf("title %d", i), Body: fmt.Sprintf("body %d", i%7)}
	}
	require.NoError(t, db.CreateInBatches(&arts, 100).Error)
	// Notes have text keys (their rebuild copies in the main file, not in
	// a side file) and a supplied vector beside the derived one.
	notes := make([]embNote, 30)
	for i := range notes {
		notes[i] = embNote{ID: fmt.Sprintf("n%03d", i), Text: fmt.Sprintf("note %d", i), Own: vecsink.Embedding{float32(i), 1, 2}}
	}
	require.NoError(t, db.Create(&notes).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)
	require.NoError(t, ix.Close())

	var mu sync.Mutex
	phases := map[string]bool{}
	ix, err = indexer.New(db, indexer.WithEmbedder(flipEmbedder{}),
		indexer.WithObserver(indexer.Observer{Rebuild: func(s indexer.RebuildStats) {
			mu.Lock()
			phases[s.Phase] = true
			mu.Unlock()
		}}))
	require.NoError(t, err)
	defer ix.Close()
	// The application writes through the rebuild: updates, inserts and
	// deletes, each in its own transaction.
	stop, started := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	var writes atomic.Int64
	go func() {
		r := rand.New(rand.NewPCG(7, 8))
		for i := 0; ; i++ {
			if i == 10 {
				close(started)
			}
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			var err error
			switch i % 3 {
			case 0:
				err = db.Model(&embArticle{ID: arts[r.IntN(len(arts))].ID}).Update("title", fmt.Sprintf("changed %d", i)).Error
			case 1:
				err = db.Create(&embArticle{Title: fmt.Sprintf("new %d", i), Body: "b"}).Error
			default:
				err = db.Delete(&embArticle{}, arts[r.IntN(len(arts))].ID).Error
			}
			if err != nil {
				done <- err
				return
			}
			writes.Add(1)
			time.Sleep(3 * time.Millisecond)
		}
	}()
	<-started
	before := writes.Load()
	require.NoError(t, ix.Rebuild(ctx))
	during := writes.Load() - before
	close(stop)
	require.NoError(t, <-done)
	require.Positive(t, during, "the application wrote during the rebuild")
	t.Logf("writes during the rebuild: %d", during)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticlesBy(t, db, nil, flipEmbedder{})

	sqlDB, err := db.DB()
	require.NoError(t, err)
	live, err := outbox.LiveTable(ctx, sqlDB, "emb_articles_vec")
	require.NoError(t, err)
	require.Equal(t, "emb_articles_vec__g1", live, "rebuilt online: a new generation")
	for _, old := range []string{"emb_articles_vec", "emb_articles_fts"} {
		var n int
		require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = ?`, old).Scan(&n))
		require.Zero(t, n, "the previous generation %s is dropped", old)
	}
	for _, n := range notes {
		var own, der []byte
		require.NoError(t, sqlDB.QueryRow(`SELECT embedding FROM emb_notes_vec__g1 WHERE id = ?`, n.ID).Scan(&own))
		require.NoError(t, sqlDB.QueryRow(`SELECT derived FROM emb_notes_derived_vec__g1 WHERE id = ?`, n.ID).Scan(&der))
		wantOwn, err := outbox.EncodeVector(n.Own, 3, outbox.EncodingBinary)
		require.NoError(t, err)
		require.Equal(t, wantOwn, own, "note %s: the supplied vector is kept", n.ID)
		require.Equal(t, wantVecBy(t, flipEmbedder{}, embDim, outbox.EncodingBinary, n.Text), der, "note %s", n.ID)
	}
	mu.Lock()
	require.True(t, phases[outbox.PhaseRequeue], "phases seen: %v", phases)
	require.True(t, phases[outbox.PhaseCopy], "the notes were copied in the main file: %v", phases)
	mu.Unlock()
	var rows int64
	require.NoError(t, db.Model(&embArticle{}).Count(&rows).Error)
	st, _ := ix.EmbedStatus()
	require.GreaterOrEqual(t, st.Texts, rows+int64(len(notes)), "every row embedded again by the new model")
}

// TestEmbedRebuildOnlineLostVector: a key whose vector events the log
// lost (pruned by hand here) gets no vector from the online rebuild's copy;
// its requeue phase forgets the key's text hash, so that the key is
// embedded again rather than kept "unchanged" without a vector.
func TestEmbedRebuildOnlineLostVector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, ix := embIndexed(t)
	arts := make([]embArticle, 40)
	for i := range arts {
		arts[i] = embArticle{Title: fmt.Sprintf("title %d", i), Body: "body"}
	}
	require.NoError(t, db.Create(&arts).Error)
	_, err := ix.Drain(ctx)
	require.NoError(t, err)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	lost := arts[7].ID
	res, err := sqlDB.Exec(`DELETE FROM oi_events WHERE tbl = 'emb_articles' AND key = ? AND op = ?`, lost, int(outbox.OpVector))
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.Positive(t, n)
	before, _ := ix.EmbedStatus()

	require.NoError(t, ix.Rebuild(ctx, "emb_articles"))
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkArticles(t, db, nil)
	after, _ := ix.EmbedStatus()
	require.Equal(t, before.Texts+1, after.Texts, "only the key that lost its vector was embedded again")
	live, err := outbox.LiveTable(ctx, sqlDB, "emb_articles_vec")
	require.NoError(t, err)
	require.Equal(t, "emb_articles_vec__g1", live)
}

// TestEmbedRebuildRequeueInterrupted: a Rebuild stopped in its requeue
// phase (after the swap, with rows left to queue for embedding) is
// finished by the next indexer's Drain, and vectors end up exact; a table
// dropped in that phase leaves nothing behind.
func TestEmbedRebuildRequeueInterrupted(t *testing.T) {
	t.Parallel()
	// interrupt seeds a database, changes the embedding model and stops
	// the Rebuild after its first requeue step.
	interrupt := func(t *testing.T) (*gorm.DB, *sql.DB) {
		ctx := context.Background()
		db := embOpen(t, testdb.Path(t))
		ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)))
		require.NoError(t, err)
		arts := make([]embArticle, 1500)
		for i := range arts {
			arts[i] = embArticle{Title: fmt.Sprintf("title %d", i), Body: "body"}
		}
		require.NoError(t, db.CreateInBatches(&arts, 500).Error)
		_, err = ix.Drain(ctx)
		require.NoError(t, err)
		require.NoError(t, ix.Close())

		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ix, err = indexer.New(db, indexer.WithEmbedder(flipEmbedder{}), indexer.WithProgress(func(p indexer.Progress) {
			if p.Phase == outbox.PhaseRequeue && p.Done > 0 {
				cancel()
			}
		}))
		require.NoError(t, err)
		require.ErrorIs(t, ix.Rebuild(rctx, "emb_articles"), context.Canceled)
		st, err := ix.Status(ctx)
		require.NoError(t, err)
		require.NoError(t, ix.Close())
		var rs *indexer.RebuildStatus
		for _, ts := range st.Tables {
			if ts.Table == "emb_articles" {
				rs = ts.Rebuild
			}
		}
		require.NotNil(t, rs, "the rebuild is still recorded")
		require.Equal(t, outbox.PhaseRequeue, rs.Phase)
		require.Positive(t, rs.Done)
		require.Less(t, rs.Done, rs.Total, "rows are left to queue")
		require.Empty(t, rs.Building, "swapped: nothing is being built")
		// The rate counts from the swap, where Done started again.
		require.Greater(t, rs.Rate, float64(rs.Done)/time.Since(rs.StartedAt).Seconds(), "%+v", rs)
		require.Positive(t, rs.ETA)
		sqlDB, err := db.DB()
		require.NoError(t, err)
		live, err := outbox.LiveTable(ctx, sqlDB, "emb_articles_vec")
		require.NoError(t, err)
		require.Equal(t, "emb_articles_vec__g1", live)
		return db, sqlDB
	}

	t.Run("resumed", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		db, sqlDB := interrupt(t)
		ix, err := indexer.New(db, indexer.WithEmbedder(flipEmbedder{}))
		require.NoError(t, err)
		defer ix.Close()
		deadline := time.Now().Add(5 * time.Minute) // minutes under -race
		for {
			_, err = ix.Drain(ctx)
			require.NoError(t, err)
			var n int
			require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM oi_rebuild`).Scan(&n))
			if n == 0 {
				break
			}
			require.True(t, time.Now().Before(deadline), "the rebuild did not finish")
			time.Sleep(20 * time.Millisecond)
		}
		_, err = ix.Drain(ctx)
		require.NoError(t, err)
		checkArticlesBy(t, db, nil, flipEmbedder{})
		var n int
		require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'emb_articles_vec'`).Scan(&n))
		require.Zero(t, n, "the previous generation is dropped")
	})

	t.Run("dropped", func(t *testing.T) {
		t.Parallel()
		db, sqlDB := interrupt(t)
		require.NoError(t, db.Migrator().DropTable(&embArticle{}))
		var names []string
		require.NoError(t, db.Raw(`SELECT name FROM sqlite_master WHERE name LIKE 'emb_articles%' OR name LIKE 'oi_rebuild_vec_emb_articles%'`).Scan(&names).Error)
		require.Empty(t, names, "nothing of emb_articles is left")
		for _, q := range []string{
			`SELECT count(*) FROM oi_rebuild`,
			`SELECT count(*) FROM oi_embed_queue WHERE tbl = 'emb_articles'`,
			`SELECT count(*) FROM oi_embed_state WHERE tbl = 'emb_articles'`,
			`SELECT count(*) FROM oi_events WHERE tbl = 'emb_articles'`,
		} {
			var n int
			require.NoError(t, sqlDB.QueryRow(q).Scan(&n))
			require.Zero(t, n, q)
		}
	})
}

// embTwo has two derived vectors of different dimensions, each computed by
// its own embedder (embedder=NAME).
type embTwo struct {
	ID    uint
	Title string
	Body  string
	Small vecsink.Embedding `vec:"dim=4;metric=l2;from=Title;embedder=small"`
	Big   vecsink.Embedding `vec:"dim=16;metric=cosine;from=Title,Body"`
}

func TestEmbedNamedEmbedders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &embTwo{}))
	require.NoError(t, db.Create(&[]embTwo{{Title: "red apple", Body: "sweet"}, {Title: "green pear", Body: "crisp"}}).Error)

	// Only the default embedder: the named one is missing, by name.
	ix0, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(16)))
	require.NoError(t, err)
	_, err = ix0.Drain(ctx)
	require.ErrorIs(t, err, indexer.ErrNoEmbedder)
	require.ErrorContains(t, err, `embedder "small"`)
	require.NoError(t, ix0.Close())

	ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(16)), indexer.WithNamedEmbedder("small", vecsink.HashEmbedder(4)))
	require.NoError(t, err)
	defer ix.Close()
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	sqlDB, _ := db.DB()
	var rows []embTwo
	require.NoError(t, db.Order("id").Find(&rows).Error)
	for _, r := range rows {
		var small, big []byte
		require.NoError(t, sqlDB.QueryRow(`SELECT embedding FROM emb_twos_vec WHERE rowid = ?`, r.ID).Scan(&small))
		require.NoError(t, sqlDB.QueryRow(`SELECT big FROM emb_twos_big_vec WHERE rowid = ?`, r.ID).Scan(&big))
		require.Equal(t, wantVec(t, 4, outbox.EncodingBinary, r.Title), small)
		require.Equal(t, wantVec(t, 16, outbox.EncodingBinary, r.Title, r.Body), big)
	}
	st, err := ix.Status(ctx)
	require.NoError(t, err)
	require.Zero(t, st.DeadLetters)
	require.Zero(t, st.EmbedQueued)
}
