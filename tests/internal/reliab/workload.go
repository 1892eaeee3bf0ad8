package reliab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Workload issues random gorm writes of every kind through the capture
// plugin. Each Step is one transaction that also appends a ledger row (see
// LedgerDDL) with the vector state it left for each key it touched, so that
// the reference check knows exactly which vectors committed, even when the
// process is killed at any moment. It writes only the notes it creates
// (keys n000…n149), never a note created by someone else.
type Workload struct {
	ID  string // writer identity, recorded in the ledger and used in text keys
	rng *rand.Rand
	n   int
}

// NewWorkload returns a workload for writer id, deterministic in seed (up to
// what the database holds when it runs).
func NewWorkload(id string, seed uint64) *Workload {
	return &Workload{ID: id, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// errRollback makes a transaction roll back on purpose.
var errRollback = errors.New("reliab: rollback on purpose")

var vocab = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima
mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu
apple banana cherry date elder fig grape honey iris jade kiwi lemon mango nectar olive pear`)

// Text returns a few random words, sometimes capitalised, with punctuation
// and numbers, which the unicode61 tokenizer splits like Tokens.
func (w *Workload) Text() string {
	n := 1 + w.rng.IntN(8)
	parts := make([]string, n)
	for i := range parts {
		word := vocab[w.rng.IntN(len(vocab))]
		switch w.rng.IntN(6) {
		case 0:
			word = strings.ToUpper(word[:1]) + word[1:]
		case 1:
			word = fmt.Sprintf("n%d", w.rng.IntN(50))
		case 2:
			word += ","
		}
		parts[i] = word
	}
	return strings.Join(parts, " ")
}

// Vector returns a random non-zero vector of small exact values.
func (w *Workload) Vector() vecsink.Embedding {
	v := make(vecsink.Embedding, Dim)
	for i := range v {
		v[i] = float32(w.rng.IntN(17)-8) / 4
	}
	v[w.rng.IntN(Dim)] = float32(1 + w.rng.IntN(8))
	return v
}

// maybeVector returns a vector, or none one time in five.
func (w *Workload) maybeVector() vecsink.Embedding {
	if w.rng.IntN(5) == 0 {
		return nil
	}
	return w.Vector()
}

// step is the state of one transaction: the vector state of touched keys.
type step struct {
	vecs map[string][]float32 // "table/key" -> vector (nil: none)
}

func (s *step) set(table string, key any, v vecsink.Embedding) {
	if len(v) == 0 {
		s.vecs[fmt.Sprintf("%s/%v", table, key)] = nil
		return
	}
	s.vecs[fmt.Sprintf("%s/%v", table, key)] = []float32(v)
}

// pick returns a random key of table (with where, if any), or false.
func pick[K any](tx *gorm.DB, table, where string) (K, bool, error) {
	var keys []K
	q := "SELECT id FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	q += " ORDER BY random() LIMIT 1"
	if err := tx.Raw(q).Scan(&keys).Error; err != nil {
		var zero K
		return zero, false, err
	}
	if len(keys) == 0 {
		var zero K
		return zero, false, nil
	}
	return keys[0], true, nil
}

// noteKeys selects the notes the workload creates (keys n000…n149); the
// workload never writes any other note.
const noteKeys = `id GLOB 'n[0-9][0-9][0-9]'`

// Kinds is the number of kinds of write Step chooses from.
const Kinds = 24

// Step runs one random write transaction and returns its ledger sequence
// number (0 when it rolled back on purpose or wrote nothing) and the kind
// of write it was.
func (w *Workload) Step(ctx context.Context, db *gorm.DB) (seq int64, kind int, err error) {
	kind = w.rng.IntN(Kinds)
	w.n++
	s := &step{vecs: map[string][]float32{}}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := w.do(tx, kind, s); err != nil {
			return err
		}
		b, err := json.Marshal(s.vecs)
		if err != nil {
			return err
		}
		return tx.Raw(`INSERT INTO wr_ledger (writer, vecs) VALUES (?, ?) RETURNING seq`, w.ID, string(b)).Scan(&seq).Error
	})
	if errors.Is(err, errRollback) {
		return 0, kind, nil
	}
	if err != nil {
		return 0, kind, fmt.Errorf("write kind %d: %w", kind, err)
	}
	return seq, kind, nil
}

func (w *Workload) do(tx *gorm.DB, kind int, s *step) error {
	switch kind {
	case 0, 1: // create an article
		a := Article{Title: w.Text(), Body: w.Text(), Cat: int64(w.rng.IntN(5)), Embedding: w.maybeVector()}
		if err := tx.Create(&a).Error; err != nil {
			return err
		}
		s.set("articles", a.ID, a.Embedding)
	case 2: // create in batches
		as := make([]Article, 2+w.rng.IntN(7))
		for i := range as {
			as[i] = Article{Title: w.Text(), Body: w.Text(), Cat: int64(w.rng.IntN(5)), Embedding: w.maybeVector()}
		}
		if err := tx.CreateInBatches(&as, 3).Error; err != nil {
			return err
		}
		for _, a := range as {
			s.set("articles", a.ID, a.Embedding)
		}
	case 3: // update one FTS column
		id, ok, err := pick[int64](tx, "articles", "")
		if err != nil || !ok {
			return err
		}
		return tx.Unscoped().Model(&Article{ID: id}).Update("title", w.Text()).Error
	case 4: // update several columns, metadata included
		id, ok, err := pick[int64](tx, "articles", "deleted_at IS NULL")
		if err != nil || !ok {
			return err
		}
		return tx.Model(&Article{ID: id}).Updates(map[string]any{"title": w.Text(), "body": w.Text(), "cat": w.rng.IntN(5)}).Error
	case 5: // update the vector only
		id, ok, err := pick[int64](tx, "articles", "deleted_at IS NULL")
		if err != nil || !ok {
			return err
		}
		v := w.Vector()
		if err := tx.Model(&Article{ID: id}).Update("embedding", v).Error; err != nil {
			return err
		}
		s.set("articles", id, v)
	case 6: // Save a whole loaded row with a new vector
		id, ok, err := pick[int64](tx, "articles", "deleted_at IS NULL")
		if err != nil || !ok {
			return err
		}
		var a Article
		if err := tx.First(&a, id).Error; err != nil {
			return err
		}
		a.Body, a.Embedding = w.Text(), w.Vector()
		if err := tx.Save(&a).Error; err != nil {
			return err
		}
		s.set("articles", id, a.Embedding)
	case 7: // soft delete
		id, ok, err := pick[int64](tx, "articles", "deleted_at IS NULL")
		if err != nil || !ok {
			return err
		}
		return tx.Delete(&Article{}, id).Error
	case 8: // restore
		id, ok, err := pick[int64](tx, "articles", "deleted_at IS NOT NULL")
		if err != nil || !ok {
			return err
		}
		return tx.Unscoped().Model(&Article{ID: id}).Update("deleted_at", nil).Error
	case 9: // hard delete
		id, ok, err := pick[int64](tx, "articles", "")
		if err != nil || !ok {
			return err
		}
		if err := tx.Unscoped().Delete(&Article{}, id).Error; err != nil {
			return err
		}
		s.set("articles", id, nil)
	case 10: // batch update through a WHERE
		lo := w.rng.IntN(200)
		return tx.Model(&Article{}).Where("id BETWEEN ? AND ?", lo, lo+5).Update("body", w.Text()).Error
	case 11: // batch vector update through a WHERE (live rows only, as gorm scopes it)
		c := w.rng.IntN(5)
		lo := w.rng.IntN(200)
		var ids []int64
		if err := tx.Raw(`SELECT id FROM articles WHERE cat = ? AND id BETWEEN ? AND ? AND deleted_at IS NULL`, c, lo, lo+20).Scan(&ids).Error; err != nil {
			return err
		}
		v := w.Vector()
		if err := tx.Model(&Article{}).Where("cat = ? AND id BETWEEN ? AND ?", c, lo, lo+20).Update("embedding", v).Error; err != nil {
			return err
		}
		for _, id := range ids {
			s.set("articles", id, v)
		}
	case 12: // batch soft delete through a WHERE
		lo := w.rng.IntN(200)
		return tx.Where("id BETWEEN ? AND ? AND cat = ?", lo, lo+3, w.rng.IntN(5)).Delete(&Article{}).Error
	case 13: // upsert: overwrite (and un-delete) an existing row or create one
		id, ok, err := pick[int64](tx, "articles", "")
		if err != nil {
			return err
		}
		if !ok || w.rng.IntN(3) == 0 {
			var next int64
			if err := tx.Raw(`SELECT coalesce(max(id), 0) + 1 + ? FROM articles`, w.rng.IntN(3)).Scan(&next).Error; err != nil {
				return err
			}
			id = next
		}
		a := Article{ID: id, Title: w.Text(), Body: w.Text(), Cat: int64(w.rng.IntN(5)), Embedding: w.Vector()}
		if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&a).Error; err != nil {
			return err
		}
		s.set("articles", id, a.Embedding)
	case 14: // a column no sidecar indexes: no event
		id, ok, err := pick[int64](tx, "articles", "deleted_at IS NULL")
		if err != nil || !ok {
			return err
		}
		return tx.Model(&Article{ID: id}).Update("views", gorm.Expr("views + 1")).Error
	case 15: // a savepoint rolled back: only the first create commits
		a := Article{Title: w.Text(), Body: w.Text(), Embedding: w.Vector()}
		if err := tx.Create(&a).Error; err != nil {
			return err
		}
		s.set("articles", a.ID, a.Embedding)
		if err := tx.SavePoint("sp1").Error; err != nil {
			return err
		}
		b := Article{Title: w.Text(), Body: w.Text(), Embedding: w.Vector()}
		if err := tx.Create(&b).Error; err != nil {
			return err
		}
		return tx.RollbackTo("sp1").Error
	case 16: // a whole transaction rolled back
		if err := tx.Create(&Article{Title: w.Text(), Body: w.Text(), Embedding: w.Vector()}).Error; err != nil {
			return err
		}
		return errRollback
	case 17, 18: // create or overwrite a note (text key, small key space)
		id := fmt.Sprintf("n%03d", w.rng.IntN(150))
		n := Note{ID: id, Text: w.Text(), Embedding: w.maybeVector()}
		var cnt int64
		if err := tx.Raw(`SELECT count(*) FROM notes WHERE id = ?`, id).Scan(&cnt).Error; err != nil {
			return err
		}
		if w.rng.IntN(2) == 0 {
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&n).Error; err != nil {
				return err
			}
			if cnt == 0 || len(n.Embedding) > 0 { // an empty vector leaves an existing row's alone
				s.set("notes", id, n.Embedding)
			}
			return nil
		}
		if cnt > 0 {
			return tx.Unscoped().Model(&Note{ID: id}).Update("text", n.Text).Error
		}
		if err := tx.Create(&n).Error; err != nil {
			return err
		}
		s.set("notes", id, n.Embedding)
	case 19: // note vector update, soft delete, restore or hard delete
		// Only the workload's own notes (see noteKeys): a test may keep a
		// note of its own that no write must touch.
		id, ok, err := pick[string](tx, "notes", noteKeys)
		if err != nil || !ok {
			return err
		}
		switch w.rng.IntN(4) {
		case 0:
			v := w.Vector()
			if err := tx.Unscoped().Model(&Note{ID: id}).Update("embedding", v).Error; err != nil {
				return err
			}
			s.set("notes", id, v)
		case 1:
			return tx.Delete(&Note{ID: id}).Error
		case 2:
			return tx.Unscoped().Model(&Note{ID: id}).Update("deleted_at", nil).Error
		default:
			if err := tx.Unscoped().Delete(&Note{ID: id}).Error; err != nil {
				return err
			}
			s.set("notes", id, nil)
		}
	case 20, 21: // memos: create, update, delete
		switch w.rng.IntN(3) {
		case 0:
			return tx.Create(&Memo{Text: w.Text()}).Error
		case 1:
			id, ok, err := pick[int64](tx, "memos", "")
			if err != nil || !ok {
				return tx.Create(&Memo{Text: w.Text()}).Error
			}
			return tx.Model(&Memo{ID: id}).Update("text", w.Text()).Error
		default:
			id, ok, err := pick[int64](tx, "memos", "")
			if err != nil || !ok {
				return err
			}
			return tx.Delete(&Memo{}, id).Error
		}
	case 22: // several writes of several models in one transaction
		a := Article{Title: w.Text(), Body: w.Text(), Cat: int64(w.rng.IntN(5)), Embedding: w.maybeVector()}
		if err := tx.Create(&a).Error; err != nil {
			return err
		}
		s.set("articles", a.ID, a.Embedding)
		if err := tx.Model(&Article{ID: a.ID}).Update("body", w.Text()).Error; err != nil {
			return err
		}
		if err := tx.Create(&Memo{Text: w.Text()}).Error; err != nil {
			return err
		}
	case 23: // a nested transaction that fails: only the outer write commits
		m := Memo{Text: w.Text()}
		if err := tx.Create(&m).Error; err != nil {
			return err
		}
		_ = tx.Transaction(func(tx2 *gorm.DB) error {
			if err := tx2.Create(&Article{Title: w.Text(), Embedding: w.Vector()}).Error; err != nil {
				return err
			}
			return errRollback
		})
	}
	return nil
}
