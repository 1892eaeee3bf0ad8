package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/indexer"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is the state of the outbox that `indexer run` exports, read from
// the database at scrape time.
type Snapshot struct {
	Head          int64         // last event id
	Applied       int64         // checkpoint
	Pending       int64         // events not yet applied
	DeadLetters   int64         // parked events
	OldestPending time.Duration // age of the oldest pending event (0 when none)
	OtherHolder   bool          // another indexer holds a live lease
	EmbedQueued   int64         // keys waiting for an embedding (from=)
	// Embed holds the embedding counts of this process; nil without an
	// embedder.
	Embed  *indexer.EmbedStatus
	Tables []TableSnapshot
}

// TableSnapshot is the per-table part of a Snapshot.
type TableSnapshot struct {
	Table       string
	Pending     int64
	DeadLetters int64
	EmbedQueued int64
	Rebuild     *RebuildSnapshot // an online rebuild in progress, nil if none
}

// RebuildSnapshot is the progress of an online rebuild.
type RebuildSnapshot struct {
	Phase       string
	Done, Total int64         // source rows copied, to copy
	Rate        float64       // rows per second since it started
	ETA         time.Duration // time left to copy (0 when unknown)
}

// Metrics are the Prometheus metrics and the health state of `indexer run`.
// The loop reports into it (Batch, Error, Lease, Beat); the database-derived
// gauges are read through the snapshot function at every scrape.
type Metrics struct {
	reg        *prometheus.Registry
	applied    prometheus.Counter
	batches    prometheus.Counter
	errors     prometheus.Counter
	stuckAfter time.Duration

	mu        sync.Mutex
	snapshot  func(context.Context) (Snapshot, error)
	lastBeat  time.Time // last committed batch
	held      bool      // holds the lease now (as the last lease change said)
	leaseNow  func() bool
	stopping  bool // Release was called: losing the lease now is the shutdown
	leaseLost bool // held it, then lost it without giving it up
	lastErr   string
}

// NewMetrics registers the metrics. snapshot is called at scrape time (with
// a deadline); stuckAfter is how long the loop may show no sign of life
// before /healthz fails.
func NewMetrics(snapshot func(context.Context) (Snapshot, error), stuckAfter time.Duration) *Metrics {
	m := &Metrics{
		reg:        prometheus.NewRegistry(),
		stuckAfter: stuckAfter,
		snapshot:   snapshot,
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "outboxindexer", Name: "events_applied_total",
			Help: "Events applied to the sidecars by this process.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "outboxindexer", Name: "batches_total",
			Help: "Batches committed by this process.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "outboxindexer", Name: "errors_total",
			Help: "Errors seen by the apply loop (each retried attempt counts).",
		}),
	}
	leaseHeld := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "outboxindexer", Name: "lease_held",
		Help: "1 when this process holds the applier lease, 0 otherwise.",
	}, func() float64 {
		if m.heldNow() {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(m.applied, m.batches, m.errors, leaseHeld,
		&snapshotCollector{snapshot: snapshot},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Batch records a committed batch of n events.
func (m *Metrics) Batch(n int) {
	m.applied.Add(float64(n))
	m.batches.Inc()
	m.mu.Lock()
	m.lastBeat = time.Now()
	m.mu.Unlock()
}

// Error records an error of the loop.
func (m *Metrics) Error(err error) {
	m.errors.Inc()
	m.mu.Lock()
	m.lastErr = err.Error()
	m.mu.Unlock()
}

// Lease records whether the process holds the lease now. Going from held to
// not held before Release counts as losing it.
func (m *Metrics) Lease(held bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if held {
		m.leaseLost = false
	} else if m.held && !m.stopping {
		m.leaseLost = true
	}
	m.held = held
}

// LeaseProbe sets the function asked at every scrape whether the lease is
// still held now (indexer.Indexer.LeaseHeld, which also checks the expiry
// time). Without it the metrics only know the last lease change the loop
// reported, which a process that was frozen past its lease TTL and has just
// resumed has not reported yet.
func (m *Metrics) LeaseProbe(held func() bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaseNow = held
}

// heldNow reports whether the lease is held: the last reported change said
// so and, when a probe is set, the probe agrees.
func (m *Metrics) heldNow() bool {
	m.mu.Lock()
	held, probe := m.held, m.leaseNow
	m.mu.Unlock()
	return held && (probe == nil || probe())
}

// Release records that the process is shutting down and gives the lease up
// on purpose: from now on, not holding it is not a loss.
func (m *Metrics) Release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopping = true
}

// Health is the body of /healthz.
type Health struct {
	OK        bool    `json:"ok"`
	LeaseHeld bool    `json:"lease_held"`
	LeaseLost bool    `json:"lease_lost"` // held it, then lost it to another holder
	Stuck     bool    `json:"stuck"`      // events wait and nobody applies them
	Pending   int64   `json:"pending"`
	LagSecs   float64 `json:"lag_seconds"`
	LastBatch string  `json:"last_batch,omitempty"`
	Problem   string  `json:"problem,omitempty"`
	LastError string  `json:"last_error,omitempty"`
}

// Health reports whether the loop is healthy. It fails when the process lost
// the lease (it held it and another holder took it without it being given
// up), when the status cannot be read, or when the loop is stuck: events
// have been pending longer than stuckAfter, no other live holder is
// responsible for them, and this process applied nothing for stuckAfter.
func (m *Metrics) Health(ctx context.Context) Health {
	snap, serr := m.snapshot(ctx)
	held := m.heldNow()
	m.mu.Lock()
	defer m.mu.Unlock()
	h := Health{LeaseHeld: held, LeaseLost: m.leaseLost, LastError: m.lastErr}
	if !m.lastBeat.IsZero() {
		h.LastBatch = m.lastBeat.UTC().Format(time.RFC3339Nano)
	}
	if serr != nil {
		h.Problem = "status: " + serr.Error()
		return h
	}
	h.Pending, h.LagSecs = snap.Pending, snap.OldestPending.Seconds()
	quiet := m.lastBeat.IsZero() || time.Since(m.lastBeat) > m.stuckAfter
	h.Stuck = m.stuckAfter > 0 && snap.Pending > 0 && snap.OldestPending > m.stuckAfter && quiet && !snap.OtherHolder
	switch {
	case h.LeaseLost:
		h.Problem = "lease lost to another holder"
	case h.Stuck:
		h.Problem = fmt.Sprintf("%d events pending for %s and none applied", snap.Pending, snap.OldestPending.Round(time.Second))
	}
	h.OK = h.Problem == ""
	return h
}

// Handler serves /metrics and /healthz (200 when healthy, 503 otherwise,
// with a JSON body).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
		defer cancel()
		h := m.Health(ctx)
		w.Header().Set("Content-Type", "application/json")
		if !h.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
	return mux
}

// Serve listens on addr and serves Handler until ctx is done. It returns the
// bound address (useful with port 0) once listening, and a channel that
// yields the server's final error.
func (m *Metrics) Serve(ctx context.Context, addr string, log *slog.Logger) (net.Addr, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("metrics server shutdown", "err", err)
		}
	}()
	return ln.Addr(), done, nil
}

// snapshotCollector exports the database-derived gauges at scrape time.
type snapshotCollector struct {
	snapshot func(context.Context) (Snapshot, error)
}

var (
	descUp          = prometheus.NewDesc("outboxindexer_status_up", "1 when the outbox status could be read at this scrape.", nil, nil)
	descHead        = prometheus.NewDesc("outboxindexer_head_position", "Id of the last event in the outbox.", nil, nil)
	descApplied     = prometheus.NewDesc("outboxindexer_applied_position", "Checkpoint: id of the last applied event.", nil, nil)
	descPending     = prometheus.NewDesc("outboxindexer_pending_events", "Events not yet applied.", nil, nil)
	descLag         = prometheus.NewDesc("outboxindexer_lag_seconds", "Age of the oldest pending event (0 when none).", nil, nil)
	descDead        = prometheus.NewDesc("outboxindexer_dead_letters", "Events parked as dead letters.", nil, nil)
	descTablePend   = prometheus.NewDesc("outboxindexer_table_pending_events", "Events not yet applied, per source table.", []string{"table"}, nil)
	descTableDead   = prometheus.NewDesc("outboxindexer_table_dead_letters", "Dead letters per source table.", []string{"table"}, nil)
	descEmbedQueued = prometheus.NewDesc("outboxindexer_embed_queued_keys", "Keys waiting for an embedding of their text (derived vectors, from=).", nil, nil)
	descTableEmbedQ = prometheus.NewDesc("outboxindexer_table_embed_queued_keys", "Keys waiting for an embedding, per source table.", []string{"table"}, nil)
	descEmbedReqs   = prometheus.NewDesc("outboxindexer_embed_requests_total", "Requests made to the embedding service by this process, retries included.", nil, nil)
	descEmbedTexts  = prometheus.NewDesc("outboxindexer_embed_texts_total", "Texts sent to the embedding service (once per request).", nil, nil)
	descEmbedErrs   = prometheus.NewDesc("outboxindexer_embed_errors_total", "Failed embedding requests by class: transient (429, 5xx, timeouts; retried), permanent (the input), rejected (key, URL or model), canceled.", []string{"class"}, nil)
	descEmbedFailed = prometheus.NewDesc("outboxindexer_embed_failed_texts_total", "Texts the embedding service failed permanently.", nil, nil)
	descEmbedLat    = prometheus.NewDesc("outboxindexer_embed_request_seconds_total", "Total latency of embedding requests (divide by requests_total for the mean).", nil, nil)
	descEmbedKeys   = prometheus.NewDesc("outboxindexer_embed_keys_total", "Queued keys settled by embedding rounds, by outcome: embedded, unchanged (no call), parked.", []string{"outcome"}, nil)
	descRebuilding  = prometheus.NewDesc("outboxindexer_rebuild_in_progress", "1 while an online rebuild of the table is in progress, per phase (scan, copy, merge, drop).", []string{"table", "phase"}, nil)
	descRebuildDone = prometheus.NewDesc("outboxindexer_rebuild_rows_done", "Source rows copied by the online rebuild in progress.", []string{"table"}, nil)
	descRebuildAll  = prometheus.NewDesc("outboxindexer_rebuild_rows_total", "Source rows the online rebuild in progress copies.", []string{"table"}, nil)
	descRebuildRate = prometheus.NewDesc("outboxindexer_rebuild_rows_per_second", "Copy rate of the online rebuild in progress since it started.", []string{"table"}, nil)
	descRebuildETA  = prometheus.NewDesc("outboxindexer_rebuild_eta_seconds", "Estimated time left to copy the rows of the online rebuild in progress (0 when unknown).", []string{"table"}, nil)
	snapshotTimeout = 5 * time.Second
)

// Describe implements prometheus.Collector.
func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descHead, descApplied, descPending, descLag, descDead, descTablePend, descTableDead,
		descEmbedQueued, descTableEmbedQ, descEmbedReqs, descEmbedTexts, descEmbedErrs, descEmbedFailed, descEmbedLat, descEmbedKeys,
		descRebuilding, descRebuildDone, descRebuildAll, descRebuildRate, descRebuildETA} {

		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	defer cancel()
	s, err := c.snapshot(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(s.Head))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(s.Applied))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, s.OldestPending.Seconds())
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(s.DeadLetters))
	ch <- prometheus.MustNewConstMetric(descEmbedQueued, prometheus.GaugeValue, float64(s.EmbedQueued))
	for _, t := range s.Tables {
		ch <- prometheus.MustNewConstMetric(descTablePend, prometheus.GaugeValue, float64(t.Pending), t.Table)
		ch <- prometheus.MustNewConstMetric(descTableDead, prometheus.GaugeValue, float64(t.DeadLetters), t.Table)
		ch <- prometheus.MustNewConstMetric(descTableEmbedQ, prometheus.GaugeValue, float64(t.EmbedQueued), t.Table)
		if r := t.Rebuild; r != nil {
			ch <- prometheus.MustNewConstMetric(descRebuilding, prometheus.GaugeValue, 1, t.Table, r.Phase)
			ch <- prometheus.MustNewConstMetric(descRebuildDone, prometheus.GaugeValue, float64(r.Done), t.Table)
			ch <- prometheus.MustNewConstMetric(descRebuildAll, prometheus.GaugeValue, float64(r.Total), t.Table)
			ch <- prometheus.MustNewConstMetric(descRebuildRate, prometheus.GaugeValue, r.Rate, t.Table)
			ch <- prometheus.MustNewConstMetric(descRebuildETA, prometheus.GaugeValue, r.ETA.Seconds(), t.Table)
		}
	}
	if e := s.Embed; e != nil {
		ch <- prometheus.MustNewConstMetric(descEmbedReqs, prometheus.CounterValue, float64(e.Requests))
		ch <- prometheus.MustNewConstMetric(descEmbedTexts, prometheus.CounterValue, float64(e.Texts))
		ch <- prometheus.MustNewConstMetric(descEmbedFailed, prometheus.CounterValue, float64(e.FailedTexts))
		ch <- prometheus.MustNewConstMetric(descEmbedLat, prometheus.CounterValue, e.TotalLatency.Seconds())
		for class, n := range map[string]int64{"transient": e.TransientErrs, "permanent": e.PermanentErrs, "rejected": e.RejectedErrs, "canceled": e.CanceledErrs} {
			ch <- prometheus.MustNewConstMetric(descEmbedErrs, prometheus.CounterValue, float64(n), class)
		}
		for outcome, n := range map[string]int64{"embedded": e.Embedded, "unchanged": e.Unchanged, "parked": e.Parked} {
			ch <- prometheus.MustNewConstMetric(descEmbedKeys, prometheus.CounterValue, float64(n), outcome)
		}
	}
}

var _ prometheus.Collector = (*snapshotCollector)(nil)
