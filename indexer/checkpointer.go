package indexer

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// checkpointer runs PASSIVE WAL checkpoints for the online rebuild in the
// background, one at a time: a PASSIVE checkpoint takes no lock that a
// writer waits on, so it overlaps the next step instead of lengthening the
// rebuild by its I/O.
type checkpointer struct {
	// mu guards done, which is closed when the running checkpoint ends
	// (nil while none runs). Not a sync.WaitGroup: kick (from Run) and
	// wait (from Rebuild, Drain or Close in another goroutine) may run
	// concurrently, and a WaitGroup's Add from zero must not race its Wait.
	mu   sync.Mutex
	done chan struct{}
}

// kick starts a checkpoint of db unless one is running.
func (c *checkpointer) kick(db *sql.DB, log *slog.Logger) {
	c.mu.Lock()
	if c.done != nil {
		c.mu.Unlock()
		return
	}
	done := make(chan struct{})
	c.done = done
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			c.done = nil
			c.mu.Unlock()
			close(done)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			log.Debug("rebuild: checkpoint", "err", err)
		}
	}()
}

// wait waits for the checkpoint running when it is called, if any.
func (c *checkpointer) wait() {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}
