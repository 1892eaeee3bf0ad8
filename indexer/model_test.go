package indexer_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

var (
	modelSeed  = flag.Uint64("model.seed", 0, "seed of TestModel (0: random seeds)")
	modelRuns  = flag.Int("model.runs", 6, "number of random runs of TestModel")
	modelSteps = flag.Int("model.steps", 120, "operations per run of TestModel")
)

var words = strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau")

func sentence(r *rand.Rand) string {
	n := 1 + r.IntN(5)
	w := make([]string, n)
	for i := range w {
		w[i] = words[r.IntN(len(words))]
	}
	return strings.Join(w, " ")
}

// TestModel runs random sequences of writes (creates, updates with and
// without vectors, soft deletes, restores, hard deletes, rolled back
// transactions, raw SQL bulk loads) interleaved with Drain, Replay and
// Rebuild, and checks the sidecars against the reference after a final
// Drain, and again after replaying everything twice. A failing run prints
// its seed; rerun it with -model.seed=N.
func TestModel(t *testing.T) {
	t.Parallel()
	seeds := []uint64{*modelSeed}
	if *modelSeed == 0 {
		seeds = seeds[:0]
		base := uint64(time.Now().UnixNano())
		for i := range *modelRuns {
			seeds = append(seeds, base+uint64(i))
		}
	}
	for i, seed := range seeds {
		mode := modes[i%len(modes)]
		noteMode := modes[(i+1)%len(modes)]
		if noteMode == outbox.ModeExternal {
			noteMode = outbox.ModeInTable
		}
		t.Run(fmt.Sprintf("seed=%d/%s", seed, mode), func(t *testing.T) {
			t.Parallel()
			defer func() {
				if t.Failed() {
					t.Logf("reproduce with: go test ./indexer -run 'TestModel' -model.seed=%d", seed)
				}
			}()
			runModel(t, seed, mode, noteMode)
		})
	}
}

func runModel(t *testing.T, seed uint64, mode, noteMode string) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	e := newEnv(t, mode, noteMode)
	ix := e.indexer(withBatch(1+r.IntN(20)), indexer.WithRebuildBatchSize(1+r.IntN(50)))
	const ids = 25
	exists := func(id int64) (bool, bool) {
		var d Doc
		if err := e.db.Unscoped().Limit(1).Find(&d, id).Error; err != nil || d.ID == 0 {
			return false, false
		}
		return true, d.DeletedAt.Valid
	}
	noteExists := func(id string) bool {
		var n int64
		e.db.Unscoped().Model(&Note{}).Where("id = ?", id).Count(&n)
		return n > 0
	}
	rawNext := int64(1000)
	dirty := false // a raw SQL write happened since the last rebuild
	for step := 0; step < *modelSteps; step++ {
		id := int64(1 + r.IntN(ids))
		ok, deleted := exists(id)
		var v []float32
		if r.IntN(4) > 0 {
			v = vec(r.IntN(1000))
		}
		switch op := r.IntN(14); {
		case op < 3 && !ok:
			e.createDoc(Doc{ID: id, Title: sentence(r), Body: sentence(r), Score: float64(r.IntN(100)) / 4, Cat: int64(r.IntN(5))}, v)
		case op < 6 && ok:
			cols := map[string]any{}
			if r.IntN(2) == 0 {
				cols["title"] = sentence(r)
			}
			if r.IntN(2) == 0 {
				cols["body"] = sentence(r)
			}
			if r.IntN(3) == 0 {
				cols["score"] = float64(r.IntN(100)) / 4
			}
			setV := len(cols) == 0 || r.IntN(3) == 0
			e.updateDoc(id, cols, setV, v)
		case op == 6 && ok && !deleted:
			e.softDeleteDoc(id)
		case op == 7 && ok && deleted:
			e.restoreDoc(id)
		case op == 8 && ok:
			e.hardDeleteDoc(id)
		case op == 9:
			nid := fmt.Sprintf("k%02d", r.IntN(ids))
			if !noteExists(nid) {
				e.createNote(Note{ID: nid, Text: sentence(r)}, v)
			} else {
				mode := r.IntN(3)
				require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
					switch mode {
					case 0:
						require.NoError(t, tx.Unscoped().Model(&Note{ID: nid}).Update("text", sentence(r)).Error)
						e.appendEv(tx, outbox.Event{Table: "notes", Key: nid, Op: outbox.OpUpdate, Vec: e.setVec("notes", nid, v, outbox.EncodingJSON)})
					case 1:
						require.NoError(t, tx.Delete(&Note{ID: nid}).Error)
						e.appendEv(tx, outbox.Event{Table: "notes", Key: nid, Op: outbox.OpSoftDelete})
					default:
						require.NoError(t, tx.Unscoped().Delete(&Note{ID: nid}).Error)
						e.appendEv(tx, outbox.Event{Table: "notes", Key: nid, Op: outbox.OpDelete})
						e.setVec("notes", nid, nil, "")
					}
					return nil
				}))
			}
		case op == 10:
			// A rolled-back transaction leaves neither rows nor events.
			err := e.db.Transaction(func(tx *gorm.DB) error {
				require.NoError(t, tx.Create(&Doc{ID: 500 + id, Title: "rolled back"}).Error)
				require.NoError(t, outbox.Append(e.ctx, e.conn(tx), []outbox.Event{{Table: "docs", Key: 500 + id, Op: outbox.OpInsert, Vec: []byte{}}}))
				return fmt.Errorf("roll back")
			})
			require.Error(t, err)
		case op == 11:
			// A raw SQL bulk load bypassing gorm.
			for range 1 + r.IntN(5) {
				e.exec(`INSERT INTO docs (id, title, body, score, cat) VALUES (?, ?, ?, 0, 0)`, rawNext, sentence(r), sentence(r))
				rawNext++
			}
			dirty = true
		case op == 12:
			e.drain(ix)
		case op == 13:
			switch r.IntN(3) {
			case 0:
				require.NoError(t, ix.Replay(e.ctx, int64(r.IntN(int(e.count(`SELECT coalesce(max(id), 0) FROM oi_events`))+1))))
			default:
				require.NoError(t, ix.Rebuild(e.ctx))
				dirty = false
			}
		}
	}
	if dirty {
		require.NoError(t, ix.Rebuild(e.ctx))
	}
	e.drain(ix)
	e.check()
	st, err := ix.Status(e.ctx)
	require.NoError(t, err)
	require.Zero(t, st.DeadLetters)
	require.Zero(t, st.Pending)
	before := e.snapshot()
	require.NoError(t, ix.Replay(e.ctx, 0))
	require.NoError(t, ix.Replay(e.ctx, 0))
	require.Equal(t, before, e.snapshot())
	e.check()
	// A rebuild from the retained log gives the same sidecars.
	require.NoError(t, ix.Rebuild(e.ctx))
	e.check()
}
