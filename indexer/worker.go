package indexer

import (
	"context"
	"errors"
	"sync"

	"gorm.io/gorm"
)

// Worker is an Indexer running Run in a background goroutine of the
// application: the in-process way to keep the sidecars up to date. Start one
// per database after gormplugin.Migrate, and Close it on shutdown.
//
// A Worker coexists with other Workers (in other processes) and with the
// standalone indexer binary on the same database: they share the lease, so
// one applies at a time and another takes over within the lease TTL when the
// holder goes away.
type Worker struct {
	ix     *Indexer
	cancel context.CancelFunc
	done   chan struct{}

	closeOnce sync.Once
	closeErr  error
	runErr    error // Run's result, set before done is closed
}

// workers is the set of running Workers of the process, for Wake.
var workers struct {
	sync.Mutex
	set map[*Worker]struct{}
}

// Start creates an Indexer on db with opts (see New) and runs it in a new
// goroutine until ctx is cancelled or Close is called.
//
// To have the worker apply a commit as soon as it happens instead of at its
// next poll (WithPollInterval), give the capture plugin Wake:
//
//	db.Use(gormplugin.New(gormplugin.WithNotify(indexer.Wake)))
func Start(ctx context.Context, db *gorm.DB, opts ...Option) (*Worker, error) {
	ix, err := New(db, opts...)
	if err != nil {
		return nil, err
	}
	if err := ix.checkEmbedder(ctx); err != nil {
		return nil, errors.Join(err, ix.Close())
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Worker{ix: ix, cancel: cancel, done: make(chan struct{})}
	workers.Lock()
	if workers.set == nil {
		workers.set = map[*Worker]struct{}{}
	}
	workers.set[w] = struct{}{}
	workers.Unlock()
	go func() {
		defer close(w.done)
		err := ix.Run(ctx)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = nil
		}
		w.runErr = err
	}()
	return w, nil
}

// Wake wakes every Worker of the process so that it looks for new events at
// once. It never blocks, and waking a Worker that has nothing to do costs a
// cheap query. Pass it to the capture plugin:
//
//	gormplugin.New(gormplugin.WithNotify(indexer.Wake))
func Wake() {
	workers.Lock()
	defer workers.Unlock()
	for w := range workers.set {
		w.ix.Notify()
	}
}

// Notify wakes this Worker (see Wake for all of them).
func (w *Worker) Notify() { w.ix.Notify() }

// Indexer returns the Worker's Indexer, for Sync, Status, dead letters and
// the other calls; do not call its Run or Close.
func (w *Worker) Indexer() *Indexer { return w.ix }

// Sync returns once every event committed before the call has been applied,
// by this Worker or by any other indexer on the database (read-your-writes).
func (w *Worker) Sync(ctx context.Context) error { return w.ix.Sync(ctx) }

// Done is closed when the Worker's goroutine has stopped: after Close, after
// ctx was cancelled, or after Run failed (see Err).
func (w *Worker) Done() <-chan struct{} { return w.done }

// Err returns Run's error once Done is closed: nil when the Worker was
// stopped by Close or by its context, and nil while it runs.
func (w *Worker) Err() error {
	select {
	case <-w.done:
		return w.runErr
	default:
		return nil
	}
}

// Close stops the Worker: it waits for the batch in flight to commit or roll
// back, releases the lease so that another indexer can take over at once,
// and closes the Indexer. It returns Run's error, if Run had failed. Calling
// it again returns the same result.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() {
		workers.Lock()
		delete(workers.set, w)
		workers.Unlock()
		w.cancel()
		<-w.done
		w.closeErr = errors.Join(w.runErr, w.ix.Close())
	})
	return w.closeErr
}
