package indexer

import (
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/stretchr/testify/require"
)

// The worker kicks checkpoints while a Rebuild, Drain or Close in another
// goroutine waits for them: kick and wait must be safe together (a
// sync.WaitGroup was not: the race detector caught Add racing Wait in CI).
func TestCheckpointerKickAndWaitConcurrently(t *testing.T) {
	t.Parallel()
	sqlDB, err := testdb.New(t).DB()
	require.NoError(t, err)
	_, err = sqlDB.Exec(`CREATE TABLE t (x)`)
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var c checkpointer
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 50 {
				_, err := sqlDB.Exec(`INSERT INTO t VALUES (?)`, g*1000+i)
				require.NoError(t, err)
				c.kick(sqlDB, log)
			}
		}()
		go func() {
			defer wg.Done()
			for range 50 {
				c.wait()
			}
		}()
	}
	wg.Wait()
	c.wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Nil(t, c.done, "no checkpoint left running after wait")

	var n int
	require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM t`).Scan(&n))
	require.Equal(t, 200, n)
}
