package vecsink

import (
	"sync/atomic"
	"time"
)

// EmbedObserver receives one report per request a [BatchEmbedder] makes to
// the embedder it wraps, retries included. Implementations must be safe for
// concurrent use and quick (they run on the request's goroutine). [EmbedStats]
// is a ready-made one; adapt it to Prometheus or slog as needed.
type EmbedObserver interface {
	ObserveEmbedRequest(r EmbedRequestReport)
}

// EmbedRequestReport describes one request to an embedder.
type EmbedRequestReport struct {
	// Texts is the number of texts sent.
	Texts int
	// FailedTexts is the number of texts the answer failed permanently on
	// their own: the failures of a *PartialError, 1 for a permanent
	// *EmbedError with an Index or of a request of one text, else 0 (a
	// permanent failure of a request of several texts is bisected, and
	// its texts are reported by the smaller requests that follow).
	FailedTexts int
	// Latency is how long the request took.
	Latency time.Duration
	// Kind is 0 for a request that was answered (even if some texts
	// failed on their own, see FailedTexts), else the kind of the error.
	Kind EmbedErrorKind
	// Canceled reports a request cut short by the caller's context.
	Canceled bool
	// Err is the error of the request, nil when it succeeded.
	Err error
}

// EmbedStats counts embedding requests. It is an [EmbedObserver]; the zero
// value is ready to use and safe for concurrent use.
type EmbedStats struct {
	requests, texts, failedTexts             atomic.Int64
	transient, permanent, rejected, canceled atomic.Int64
	latency                                  atomic.Int64
}

// ObserveEmbedRequest implements EmbedObserver.
func (s *EmbedStats) ObserveEmbedRequest(r EmbedRequestReport) {
	s.requests.Add(1)
	s.texts.Add(int64(r.Texts))
	s.failedTexts.Add(int64(r.FailedTexts))
	s.latency.Add(int64(r.Latency))
	switch {
	case r.Canceled:
		s.canceled.Add(1)
	case r.Kind == EmbedTransient:
		s.transient.Add(1)
	case r.Kind == EmbedPermanent:
		s.permanent.Add(1)
	case r.Kind == EmbedRejected:
		s.rejected.Add(1)
	}
}

// Snapshot returns the counts so far.
func (s *EmbedStats) Snapshot() EmbedStatsSnapshot {
	return EmbedStatsSnapshot{
		Requests:      s.requests.Load(),
		Texts:         s.texts.Load(),
		FailedTexts:   s.failedTexts.Load(),
		TransientErrs: s.transient.Load(),
		PermanentErrs: s.permanent.Load(),
		RejectedErrs:  s.rejected.Load(),
		CanceledErrs:  s.canceled.Load(),
		TotalLatency:  time.Duration(s.latency.Load()),
	}
}

// EmbedStatsSnapshot is a copy of the counts of an [EmbedStats].
type EmbedStatsSnapshot struct {
	// Requests is the number of requests made, retries included.
	Requests int64
	// Texts is the number of texts sent, counted once per request.
	Texts int64
	// FailedTexts is the number of texts that failed permanently on their
	// own (see EmbedRequestReport.FailedTexts).
	FailedTexts int64
	// TransientErrs, PermanentErrs and RejectedErrs count failed requests by
	// kind of error; CanceledErrs those cut short by the caller's context.
	TransientErrs, PermanentErrs, RejectedErrs, CanceledErrs int64
	// TotalLatency is the sum of the requests' latencies.
	TotalLatency time.Duration
}

// MeanLatency returns TotalLatency / Requests, 0 without requests.
func (s EmbedStatsSnapshot) MeanLatency() time.Duration {
	if s.Requests == 0 {
		return 0
	}
	return s.TotalLatency / time.Duration(s.Requests)
}
