package main

import (
	"encoding/json"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// scrape fetches and parses /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// value returns the value of the family's metric with the given label
// (name=value pairs), or of its only metric.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "metric %s missing", name)
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// `run` applies commits of another process (this test) as they happen,
// exports Prometheus metrics and a health check, and stops cleanly on
// SIGTERM.
func TestRunMetricsAndHealth(t *testing.T) {
	t.Parallel()
	path := testdb.Path(t)
	db := openTickets(t, path)
	p := start(t, nil, "run", "--db", path, "--metrics-addr", "127.0.0.1:0", "--poll-interval", "10ms", "--log-format", "json")
	rec := p.waitLog(t, "serving metrics")
	addr, _ := rec["addr"].(string)
	require.NotEmpty(t, addr)

	writeTickets(t, db, 1, 40)
	writeTickets(t, db, 41, 10)
	// Wait (not a timed assertion: the test's deadline bounds it) until the
	// daemon has applied the 50 events.
	var fams map[string]*dto.MetricFamily
	for {
		fams = scrape(t, addr)
		if value(t, fams, "outboxindexer_events_applied_total") >= 50 && value(t, fams, "outboxindexer_pending_events") == 0 {
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("not applied; stderr:\n%s", p.errText())
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.EqualValues(t, 1, value(t, fams, "outboxindexer_status_up"))
	require.EqualValues(t, 50, value(t, fams, "outboxindexer_events_applied_total"))
	require.GreaterOrEqual(t, value(t, fams, "outboxindexer_batches_total"), 1.0)
	require.GreaterOrEqual(t, value(t, fams, "outboxindexer_head_position"), 50.0)
	require.Equal(t, value(t, fams, "outboxindexer_head_position"), value(t, fams, "outboxindexer_applied_position"))
	require.EqualValues(t, 0, value(t, fams, "outboxindexer_lag_seconds"))
	require.EqualValues(t, 0, value(t, fams, "outboxindexer_dead_letters"))
	require.EqualValues(t, 0, value(t, fams, "outboxindexer_errors_total"))
	require.EqualValues(t, 1, value(t, fams, "outboxindexer_lease_held"))
	require.EqualValues(t, 0, value(t, fams, "outboxindexer_table_pending_events", "table", "tickets"))
	require.Contains(t, fams, "go_goroutines")

	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	var h cli.Health
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, h.OK)
	require.True(t, h.LeaseHeld)
	require.False(t, h.Stuck)
	require.Zero(t, h.Pending)

	st := status(t, path)
	require.True(t, st.Lease.Live, "the daemon holds the lease")
	require.EqualValues(t, 50, sidecarRows(t, st, "tickets", "vec0"))

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	r := p.wait(t)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, `"msg":"indexer stopped"`)
	st = status(t, path)
	require.False(t, st.Lease.Live, "the lease was released on SIGTERM")
}
