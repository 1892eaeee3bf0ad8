package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// snapshots is a settable snapshot source for the health logic.
type snapshots struct {
	mu   sync.Mutex
	snap Snapshot
	err  error
}

func (s *snapshots) set(snap Snapshot, err error) {
	s.mu.Lock()
	s.snap, s.err = snap, err
	s.mu.Unlock()
}

func (s *snapshots) get(context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, s.err
}

func healthz(t *testing.T, srv *httptest.Server) (int, Health) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var h Health
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	return resp.StatusCode, h
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	src := &snapshots{}
	m := NewMetrics(src.get, time.Minute)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	code, h := healthz(t, srv)
	require.Equal(t, http.StatusOK, code, "idle and nothing pending: healthy")
	require.True(t, h.OK)

	// Events waited longer than stuck-after and nobody applied any: stuck.
	src.set(Snapshot{Pending: 7, OldestPending: 2 * time.Minute}, nil)
	code, h = healthz(t, srv)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.True(t, h.Stuck)
	require.Contains(t, h.Problem, "7 events pending")

	// Another live holder is responsible for them: not this process's fault.
	src.set(Snapshot{Pending: 7, OldestPending: 2 * time.Minute, OtherHolder: true}, nil)
	code, _ = healthz(t, srv)
	require.Equal(t, http.StatusOK, code)

	// This process just applied a batch: a backlog being worked on is fine.
	src.set(Snapshot{Pending: 7, OldestPending: 2 * time.Minute}, nil)
	m.Batch(3)
	code, _ = healthz(t, srv)
	require.Equal(t, http.StatusOK, code)

	// Losing the lease fails the check until it is held again.
	m.Lease(true)
	m.Lease(false)
	code, h = healthz(t, srv)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.True(t, h.LeaseLost)
	m.Lease(true)
	code, h = healthz(t, srv)
	require.Equal(t, http.StatusOK, code)
	require.True(t, h.LeaseHeld)

	// Giving it up on shutdown is not a loss.
	m.Release()
	m.Lease(false)
	code, _ = healthz(t, srv)
	require.Equal(t, http.StatusOK, code)

	// A status that cannot be read fails the check.
	src.set(Snapshot{}, errors.New("disk I/O error"))
	code, h = healthz(t, srv)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, h.Problem, "disk I/O error")
}

func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	src := &snapshots{}
	src.set(Snapshot{Head: 10, Applied: 8, Pending: 2, DeadLetters: 1, OldestPending: 1500 * time.Millisecond,
		Tables: []TableSnapshot{{Table: "docs", Pending: 2, DeadLetters: 1,
			Rebuild: &RebuildSnapshot{Phase: "copy", Done: 400, Total: 1000, Rate: 200, ETA: 3 * time.Second}}}}, nil)
	m := NewMetrics(src.get, time.Minute)
	m.Batch(5)
	m.Batch(3)
	m.Error(errors.New("busy"))
	m.Lease(true)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	body := string(b)
	for _, want := range []string{
		"outboxindexer_status_up 1",
		"outboxindexer_head_position 10",
		"outboxindexer_applied_position 8",
		"outboxindexer_pending_events 2",
		"outboxindexer_lag_seconds 1.5",
		"outboxindexer_dead_letters 1",
		"outboxindexer_events_applied_total 8",
		"outboxindexer_batches_total 2",
		"outboxindexer_errors_total 1",
		"outboxindexer_lease_held 1",
		`outboxindexer_table_pending_events{table="docs"} 2`,
		`outboxindexer_table_dead_letters{table="docs"} 1`,
		`outboxindexer_rebuild_in_progress{phase="copy",table="docs"} 1`,
		`outboxindexer_rebuild_rows_done{table="docs"} 400`,
		`outboxindexer_rebuild_rows_total{table="docs"} 1000`,
		`outboxindexer_rebuild_rows_per_second{table="docs"} 200`,
		`outboxindexer_rebuild_eta_seconds{table="docs"} 3`,
	} {
		require.Contains(t, body, want+"\n")
	}

	src.set(Snapshot{}, errors.New("locked"))
	resp2, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp2.Body.Close()
	b, err = io.ReadAll(resp2.Body)
	require.NoError(t, err)
	require.Contains(t, string(b), "outboxindexer_status_up 0\n")
	require.False(t, strings.Contains(string(b), "outboxindexer_pending_events "), "no stale gauges when the status is unreadable")
}

// TestLeaseProbe: a process that was frozen past its lease TTL reports the
// lease as not held from its first scrape after resuming, before its loop
// has noticed and reported the loss.
func TestLeaseProbe(t *testing.T) {
	t.Parallel()
	src := &snapshots{}
	m := NewMetrics(src.get, time.Minute)
	var live atomic.Bool
	live.Store(true)
	m.LeaseProbe(live.Load)
	m.Lease(true)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	scrape := func() string {
		resp, err := http.Get(srv.URL + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.Contains(t, scrape(), "outboxindexer_lease_held 1")
	_, h := healthz(t, srv)
	require.True(t, h.LeaseHeld)

	live.Store(false) // the lease expired; the loop has not reported it yet
	require.Contains(t, scrape(), "outboxindexer_lease_held 0")
	_, h = healthz(t, srv)
	require.False(t, h.LeaseHeld)
}
