package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/indexer"
)

var runCommand = cli.Command{
	Name:          "run",
	Summary:       "the daemon: apply events as they commit, until stopped",
	Interruptible: true,
	Run:           runRun,
}

const runHelp = `
Apply events as they commit, until SIGINT or SIGTERM: then the batch in
flight is committed or rolled back, the lease is released and the process
exits 0. Several indexers (this binary, in-process workers) may run on one
database: the lease lets one apply at a time, and another takes over within
--lease-ttl when the holder dies. Commits by other processes are noticed
every --poll-interval through PRAGMA data_version (no I/O).

With --metrics-addr (for example 127.0.0.1:9090 or :9090), serve Prometheus
metrics on /metrics and a health check on /healthz: 200 when healthy, 503
when this process lost the lease to another holder or when events have
waited longer than --stuck-after with nobody applying them.

While events are applied, a summary line (events applied, pending, lag) is
logged every --log-every.

Vectors derived from text (tag from=) need an embedder: --embed-api openai
(OpenAI-compatible POST {url}/embeddings) or ollama (POST {url}/api/embed),
--embed-url, --embed-model, and optionally --embed-batch, --embed-concurrency
and --embed-rate; the API key comes from INDEXER_EMBED_API_KEY, never from a
flag. Vectors tagged embedder=NAME take theirs from
--embedder name=NAME,api=openai|ollama,model=MODEL[,url=URL] (repeatable; key
from INDEXER_EMBED_API_KEY_<NAME>, else INDEXER_EMBED_API_KEY). Embedding runs outside every write transaction; an outage of the
service only grows the lag (outboxindexer_embed_queued_keys).`

func runRun(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("run", "[flags]", runHelp)
	var c cli.Common
	c.Register(fs, env, true)
	batch := fs.Int("batch-size", indexer.DefaultBatchSize, "events per apply transaction")
	poll := fs.Duration("poll-interval", indexer.DefaultPollInterval, "how often to look for commits of other processes and for a free lease")
	leaseTTL := fs.Duration("lease-ttl", indexer.DefaultLeaseTTL, "lease time to live: a dead holder is replaced after at most this long")
	holder := fs.String("holder", "", "identity written in the lease row (default host:pid:random)")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics and /healthz on this address (host:port; empty: off)")
	stuckAfter := fs.Duration("stuck-after", 2*time.Minute, "/healthz fails when events have waited this long and none was applied")
	logEvery := fs.Duration("log-every", time.Minute, "interval of the summary log line while events are applied (0: off)")
	var emb cli.EmbedFlags
	emb.Register(fs, env)
	if err := cli.ParseFlags(env, fs, args, false); err != nil {
		return err
	}
	embOpts, err := emb.Options()
	if err != nil {
		return err
	}
	log, err := c.Logger()
	if err != nil {
		return err
	}
	switch {
	case *batch < 1:
		return cli.Usagef("--batch-size %d: want at least 1", *batch)
	case *poll <= 0:
		return cli.Usagef("--poll-interval %v: want a positive duration", *poll)
	case *leaseTTL <= 0:
		return cli.Usagef("--lease-ttl %v: want a positive duration", *leaseTTL)
	case *stuckAfter <= 0:
		return cli.Usagef("--stuck-after %v: want a positive duration", *stuckAfter)
	case *logEvery < 0:
		return cli.Usagef("--log-every %v: want 0 or a positive duration", *logEvery)
	}

	// The session is created after the metrics, whose snapshot reads it.
	var session atomic.Pointer[cli.Session]
	snapshot := func(ctx context.Context) (cli.Snapshot, error) {
		s := session.Load()
		if s == nil {
			return cli.Snapshot{}, errors.New("indexer not started")
		}
		st, err := s.Indexer.Status(ctx, indexer.WithoutCounts()) // every scrape: no table scans
		if err != nil {
			return cli.Snapshot{}, err
		}
		snap := cli.Snapshot{Head: st.Head, Applied: st.Applied, Pending: st.Pending, DeadLetters: st.DeadLetters,
			OldestPending: st.OldestPendingAge, OtherHolder: st.Lease.Live && !st.Lease.Mine, EmbedQueued: st.EmbedQueued}
		if es, ok := s.Indexer.EmbedStatus(); ok {
			snap.Embed = &es
		}
		for _, t := range st.Tables {
			ts := cli.TableSnapshot{Table: t.Table, Pending: t.Pending, DeadLetters: t.DeadLetters, EmbedQueued: t.EmbedQueued}
			if r := t.Rebuild; r != nil {
				ts.Rebuild = &cli.RebuildSnapshot{Phase: r.Phase, Done: r.Done, Total: r.Total, Rate: r.Rate, ETA: r.ETA}
			}
			snap.Tables = append(snap.Tables, ts)
		}
		return snap, nil
	}
	m := cli.NewMetrics(snapshot, *stuckAfter)
	var applied, batches atomic.Int64
	observer := indexer.Observer{
		Batch: func(b indexer.BatchStats) {
			m.Batch(b.Events)
			applied.Add(int64(b.Events))
			batches.Add(1)
		},
		Error: m.Error,
		Lease: m.Lease,
		Parked: func(table string, events int, reason string) {
			log.Warn("events parked as dead letters", "table", table, "events", events, "reason", reason)
		},
	}
	opts := []indexer.Option{
		indexer.WithBatchSize(*batch),
		indexer.WithPollInterval(*poll),
		indexer.WithLease(indexer.DefaultLeaseName, *leaseTTL),
		indexer.WithObserver(observer),
	}
	opts = append(opts, embOpts...)
	if *holder != "" {
		opts = append(opts, indexer.WithHolder(*holder))
	}
	s, err := c.OpenIndexer(ctx, log, opts...)
	if err != nil {
		return err
	}
	defer s.Close()
	session.Store(s)
	m.LeaseProbe(s.Indexer.LeaseHeld)

	if *metricsAddr != "" {
		addr, done, err := m.Serve(ctx, *metricsAddr, log)
		if err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", *metricsAddr, err)
		}
		defer func() {
			if err := <-done; err != nil {
				log.Warn("metrics server", "err", err)
			}
		}()
		log.Info("serving metrics", "addr", addr.String(), "metrics", "http://"+addr.String()+"/metrics", "health", "http://"+addr.String()+"/healthz")
	}
	if *logEvery > 0 {
		go func() {
			t := time.NewTicker(*logEvery)
			defer t.Stop()
			var last int64
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					n := applied.Load()
					if n == last {
						continue
					}
					last = n
					attrs := []any{"applied_total", n, "batches_total", batches.Load()}
					sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					if snap, err := snapshot(sctx); err == nil {
						attrs = append(attrs, "pending", snap.Pending, "lag", snap.OldestPending.Round(time.Millisecond).String(), "dead_letters", snap.DeadLetters)
					}
					cancel()
					log.Info("indexer progress", attrs...)
				}
			}
		}()
	}

	log.Info("indexer running", "db", c.DB, "holder", s.Indexer.Holder(), "embedder", emb.String())
	go func() {
		<-ctx.Done()
		m.Release()
	}()
	err = s.Indexer.Run(ctx)
	m.Release()
	if err != nil {
		return err
	}
	stopAttrs := []any{"applied", applied.Load(), "batches", batches.Load()}
	if es, ok := s.Indexer.EmbedStatus(); ok {
		stopAttrs = append(stopAttrs, "embedded", es.Embedded, "embed_requests", es.Requests, "embed_texts", es.Texts)
	}
	log.Info("indexer stopped", stopAttrs...)
	return ctx.Err() // context.Canceled after a signal: a clean stop, exit 0
}
