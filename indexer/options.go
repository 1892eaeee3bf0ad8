package indexer

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Option configures an Indexer.
type Option func(*config) error

type config struct {
	batchSize        int
	rebuildBatchSize int
	newBackoff       func() backoff.BackOff
	maxAttempts      int
	retention        time.Duration
	compactInterval  time.Duration
	leaseName        string
	leaseTTL         time.Duration
	holder           string
	logger           *slog.Logger
	pollInterval     time.Duration
	progress         func(Progress)
	offline          bool
	rebuildStep      time.Duration
	dropGrace        time.Duration
	observer         Observer
	now              func() time.Time
	embedders        map[string]embedderConfig // by name; "" is WithEmbedder's
	embedRound       int
	// largeMerge is merge.go's constant, which tests (export_test.go)
	// scale down.
	largeMerge int
	// coldDrop is online.go's constant, which tests change.
	coldDrop int
	// sideMaxSegments is side.go's constant, which tests scale down, and
	// sideChunk (tests) fixes the rows a side step copies (0: tuned).
	sideMaxSegments int
	sideChunk       int
}

// Defaults.
const (
	DefaultBatchSize        = 1000
	DefaultRebuildBatchSize = 20000
	DefaultMaxAttempts      = 5
	DefaultLeaseTTL         = 15 * time.Second
	DefaultPollInterval     = 100 * time.Millisecond
	DefaultCompactInterval  = 10 * time.Second
	DefaultLeaseName        = "main"
	DefaultEmbedRound       = 4096

	// DefaultRebuildStep is how long one transaction of an online rebuild
	// aims to hold the write lock.
	DefaultRebuildStep = 15 * time.Millisecond
)

func defaultBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = time.Minute
	return b
}

func defaults() *config {
	host, _ := os.Hostname()
	return &config{
		batchSize:        DefaultBatchSize,
		rebuildBatchSize: DefaultRebuildBatchSize,
		newBackoff:       defaultBackoff,
		maxAttempts:      DefaultMaxAttempts,
		compactInterval:  DefaultCompactInterval,
		leaseName:        DefaultLeaseName,
		leaseTTL:         DefaultLeaseTTL,
		holder:           fmt.Sprintf("%s:%d:%s", host, os.Getpid(), randomID()),
		logger:           slog.New(slog.DiscardHandler),
		pollInterval:     DefaultPollInterval,
		rebuildStep:      DefaultRebuildStep,
		dropGrace:        500 * time.Millisecond,
		now:              time.Now,
		embedRound:       DefaultEmbedRound,
		largeMerge:       largeMerge,
		coldDrop:         coldDrop,
		sideMaxSegments:  sideMaxSegments,
	}
}

// WithOffline makes Rebuild run in one write transaction, as it did before
// online rebuilds: the fastest way for a maintenance window, but writers
// wait for the whole rebuild (see Rebuild).
func WithOffline() Option {
	return func(c *config) error {
		c.offline = true
		return nil
	}
}

// WithRebuildStep sets how long each transaction of an online rebuild aims
// to hold the write lock (default DefaultRebuildStep): the number of rows
// copied per transaction adapts to it, and the rebuild pauses between
// transactions for a quarter of it (at least 4 ms) so that writers get the
// lock. A foreground Rebuild that has seen no other connection commit for
// a second lets its steps grow to 4× d (at most 100 ms) until the next
// commit by another connection.
func WithRebuildStep(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("indexer: rebuild step %v: must be positive", d)
		}
		c.rebuildStep = d
		return nil
	}
}

// WithBatchSize sets how many events one apply transaction reads (default
// DefaultBatchSize). Events of one key are coalesced, so larger batches
// apply faster; they also hold the write lock longer.
func WithBatchSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("indexer: batch size %d: must be at least 1", n)
		}
		c.batchSize = n
		return nil
	}
}

// WithRebuildBatchSize sets how many source rows Rebuild fills per
// statement (default DefaultRebuildBatchSize); progress is reported after
// each.
func WithRebuildBatchSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("indexer: rebuild batch size %d: must be at least 1", n)
		}
		c.rebuildBatchSize = n
		return nil
	}
}

// WithBackoff sets the retry policy for transient failures (SQLITE_BUSY,
// SQLITE_LOCKED, I/O errors, a full disk) and the pause between attempts of
// an event that fails. newPolicy is called for each new retry sequence. When
// the policy stops (backoff.Stop), Drain, Sync, Rebuild and Replay return
// the last error; Run logs it and starts over. The default is exponential
// from 50 ms to 5 s, giving up after a minute.
func WithBackoff(newPolicy func() backoff.BackOff) Option {
	return func(c *config) error {
		if newPolicy == nil {
			return fmt.Errorf("indexer: backoff policy is nil")
		}
		c.newBackoff = newPolicy
		return nil
	}
}

// WithMaxAttempts sets how many times a failing event, key or table is tried
// before its events are parked in oi_deadletters (default
// DefaultMaxAttempts).
func WithMaxAttempts(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("indexer: max attempts %d: must be at least 1", n)
		}
		c.maxAttempts = n
		return nil
	}
}

// WithRetention sets how long applied events are kept in full before
// compaction. Compaction always keeps, per live key, its latest applied
// event that carries a vector (what Rebuild needs: vectors live nowhere
// else), so the log stays proportional to live rows. 0 (the default)
// compacts as soon as events are applied; a negative duration disables
// compaction and keeps the whole history.
func WithRetention(d time.Duration) Option {
	return func(c *config) error {
		c.retention = d
		return nil
	}
}

// WithCompactInterval sets how often Run compacts the log (default
// DefaultCompactInterval). Drain compacts once at its end.
func WithCompactInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("indexer: compact interval %v: must be positive", d)
		}
		c.compactInterval = d
		return nil
	}
}

// WithLease sets the lease name (indexers sharing a name apply one at a
// time; default DefaultLeaseName) and its time to live (default
// DefaultLeaseTTL): a holder that stops renewing is replaced by another
// indexer at most ttl (plus one poll interval) later.
func WithLease(name string, ttl time.Duration) Option {
	return func(c *config) error {
		if name == "" {
			return fmt.Errorf("indexer: lease name is empty")
		}
		if ttl <= 0 {
			return fmt.Errorf("indexer: lease ttl %v: must be positive", ttl)
		}
		c.leaseName, c.leaseTTL = name, ttl
		return nil
	}
}

// WithHolder sets the identity written in the lease row (default
// host:pid:random). Two live indexers must not share one.
func WithHolder(id string) Option {
	return func(c *config) error {
		if id == "" {
			return fmt.Errorf("indexer: holder id is empty")
		}
		c.holder = id
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("indexer: logger is nil")
		}
		c.logger = l
		return nil
	}
}

// WithPollInterval sets how often Run checks for commits made by other
// connections (through PRAGMA data_version, which costs no I/O) and, when it
// does not hold the lease, whether the lease has become free (default
// DefaultPollInterval). Commits in the same process are noticed at once
// through Notify.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("indexer: poll interval %v: must be positive", d)
		}
		c.pollInterval = d
		return nil
	}
}

// WithProgress sets a callback that Rebuild calls after each filled batch
// (offline), or after each committed step of an online rebuild this
// indexer drives (Progress.Phase is set then), on the rebuilding goroutine.
func WithProgress(f func(Progress)) Option {
	return func(c *config) error {
		c.progress = f
		return nil
	}
}

// WithObserver sets callbacks for metrics.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		c.observer = o
		return nil
	}
}

// Progress reports how far a Rebuild has come for one sidecar.
type Progress struct {
	Table   string // source table
	Sidecar string // sidecar table
	Done    int64  // source rows done
	Total   int64  // source rows in all
	// Phase is the phase of an online rebuild (outbox.PhaseScan, …), ""
	// for the offline one.
	Phase string
}

// Observer receives what an Indexer does, for metrics. Every field is
// optional; callbacks run synchronously on the applying goroutine and must
// be quick. With an embedder, Error is also called from the goroutines of
// the embedding stage, concurrently with the applier: it must be safe for
// concurrent use.
type Observer struct {
	// Batch is called after each committed apply transaction.
	Batch func(BatchStats)
	// Error is called after each failed attempt (it may be retried).
	Error func(error)
	// Parked is called when events have been moved to oi_deadletters (after
	// the transaction that moved them committed).
	Parked func(table string, events int, reason string)
	// Lease is called when this indexer gains or loses the lease.
	Lease func(held bool)
	// Rebuild is called after each committed step of an online rebuild.
	Rebuild func(RebuildStats)
}

// RebuildStats describes one committed step of an online rebuild.
type RebuildStats struct {
	Table    string        // source table
	Phase    string        // the phase after the step (outbox.PhaseScan, …)
	Done     int64         // source rows copied so far
	Total    int64         // source rows to copy (the count when the rebuild started)
	Duration time.Duration // time spent in the step's transaction
}

// BatchStats describes one committed apply transaction.
type BatchStats struct {
	Events     int           // events consumed: the batch plus absorbed later events of its keys
	Keys       int           // distinct keys applied
	Parked     int           // events moved to oi_deadletters
	Checkpoint int64         // the new checkpoint
	Lag        time.Duration // age of the newest event applied, at commit
	Wait       time.Duration // time spent waiting for the write lock (BEGIN IMMEDIATE)
	Duration   time.Duration // time spent in the transaction, holding the write lock, commit included
}

// WithEmbedder gives the indexer the embedder that computes derived vectors
// (fields tagged `vec:"…;from=Title,Body"`). Pass the raw client
// (vecsink.NewOpenAIEmbedder, vecsink.NewOllamaEmbedder,
// vecsink.HashEmbedder, or your own): the indexer wraps it in a
// vecsink.BatchEmbedder configured with opts (batch size, concurrency,
// rate limit, retry policy) and its own observer, whose counts
// EmbedStats returns. Without an embedder, an indexer whose registry
// holds a derived vector fails with ErrNoEmbedder.
//
// The embedder is identified in the stored text hashes by its provider and
// model (HTTP clients) or dimension (HashEmbedder): after switching models,
// Rebuild the table to embed every row again.
func WithEmbedder(e vecsink.Embedder, opts ...vecsink.BatchOption) Option {
	return func(c *config) error {
		if e == nil {
			return fmt.Errorf("indexer: WithEmbedder: embedder is nil")
		}
		if _, err := vecsink.NewBatchEmbedder(e, opts...); err != nil {
			return fmt.Errorf("indexer: WithEmbedder: %w", err)
		}
		if c.embedders == nil {
			c.embedders = map[string]embedderConfig{}
		}
		c.embedders[""] = embedderConfig{e, opts}
		return nil
	}
}

// embedderConfig is an embedder given to WithEmbedder or WithNamedEmbedder.
type embedderConfig struct {
	e    vecsink.Embedder
	opts []vecsink.BatchOption
}

// WithNamedEmbedder registers the embedder of the derived vectors tagged
// embedder=name (`vec:"dim=384;from=Title;embedder=small"`), for models
// whose vector fields need different models or dimensions; it is wrapped
// like WithEmbedder's. Vectors without embedder= use WithEmbedder's.
func WithNamedEmbedder(name string, e vecsink.Embedder, opts ...vecsink.BatchOption) Option {
	return func(c *config) error {
		if name == "" {
			return fmt.Errorf("indexer: WithNamedEmbedder: the name is empty (use WithEmbedder for the default embedder)")
		}
		if e == nil {
			return fmt.Errorf("indexer: WithNamedEmbedder(%q): embedder is nil", name)
		}
		if _, err := vecsink.NewBatchEmbedder(e, opts...); err != nil {
			return fmt.Errorf("indexer: WithNamedEmbedder(%q): %w", name, err)
		}
		if c.embedders == nil {
			c.embedders = map[string]embedderConfig{}
		}
		c.embedders[name] = embedderConfig{e, opts}
		return nil
	}
}

// WithEmbedRound sets how many queued keys one embedding round reads,
// embeds (in requests of the embedder's batch size, concurrently) and
// applies in one short transaction (default DefaultEmbedRound). Rounds of
// several times batch size × concurrency keep every request slot busy.
func WithEmbedRound(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("indexer: embed round %d: must be at least 1", n)
		}
		c.embedRound = n
		return nil
	}
}
