package gormplugin_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

// A second handle on a migrated database sees the models for the first
// time from many goroutines at once.
func TestConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &Article{}, &Comment{}))

	db2 := testdb.Open(t, path)
	require.NoError(t, db2.Use(gormplugin.New()))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- db2.Create(&Article{Title: fmt.Sprint(i), Embedding: vecsink.Embedding{1, 2, 3}}).Error
		}()
		go func() {
			defer wg.Done()
			var as []Article
			errs <- db2.Find(&as).Error
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	evs := events(t, db2)
	require.Len(t, evs, 8)
	for _, e := range evs {
		require.Len(t, e.Vec, 12)
	}
}
