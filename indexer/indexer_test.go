package indexer_test

import (
	"fmt"
	"testing"

	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
)

var modes = []string{outbox.ModeExternal, outbox.ModeInTable, outbox.ModeContentless}

func TestApplyLifecycle(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			noteMode := mode
			if mode == outbox.ModeExternal {
				noteMode = outbox.ModeInTable // external content needs integer keys
			}
			e := newEnv(t, mode, noteMode)
			ix := e.indexer()
			e.createDoc(Doc{ID: 1, Title: "red apple", Body: "sweet fruit", Score: 1.5, Cat: 2}, vec(1))
			e.createDoc(Doc{ID: 2, Title: "green pear", Body: "crisp fruit"}, vec(2))
			e.createDoc(Doc{ID: 3, Title: "no vector", Body: "plain text"}, nil)
			e.createNote(Note{ID: "a", Text: "alpha note"}, vec(7))
			e.createNote(Note{ID: "007", Text: "bond"}, nil)
			require.Equal(t, 5, e.drain(ix))
			e.check()

			// Update text only: the vector stays. Update the vector only.
			e.updateDoc(1, map[string]any{"title": "yellow apple", "score": 3.25}, false, nil)
			e.updateDoc(2, nil, true, vec(20))
			e.drain(ix)
			e.check()

			// Soft delete, restore, hard delete.
			e.softDeleteDoc(1)
			e.drain(ix)
			e.check()
			e.restoreDoc(1)
			e.softDeleteDoc(2)
			e.drain(ix)
			e.check()
			e.hardDeleteDoc(2)
			e.hardDeleteDoc(3)
			e.drain(ix)
			e.check()
			// Remove a vector.
			e.updateDoc(1, nil, true, nil)
			e.drain(ix)
			e.check()
			require.Zero(t, e.drain(ix))
		})
	}
}

func TestCoalescingAcrossBatches(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, mode, outbox.ModeContentless)
			// Batch size 3: each batch sees only part of key 1's events and
			// applies the key as it is now; later batches apply it again.
			ix := e.indexer(withBatch(3))
			e.createDoc(Doc{ID: 1, Title: "one"}, vec(1))
			e.createDoc(Doc{ID: 2, Title: "two"}, vec(2))
			for i := range 10 {
				e.updateDoc(1, map[string]any{"title": fmt.Sprintf("one v%d", i)}, i%3 == 0, vec(100+i))
				e.updateDoc(2, map[string]any{"body": fmt.Sprintf("body %d", i)}, false, nil)
			}
			e.softDeleteDoc(2)
			e.restoreDoc(2)
			head := e.count("SELECT max(id) FROM oi_events")
			e.drain(ix)
			e.check()
			st, err := ix.Status(e.ctx)
			require.NoError(t, err)
			require.Equal(t, head, st.Head)
			require.Equal(t, head, st.Applied)
			require.Zero(t, st.Pending)
			// Retention removed what no rebuild needs: fewer events remain than were written.
			require.Less(t, e.count("SELECT count(*) FROM oi_events"), head)
		})
	}
}
