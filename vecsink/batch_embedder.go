package vecsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"
)

// BatchEmbedder wraps any [Embedder] with what a production embedding
// pipeline needs:
//
//   - batching: an Embed call of many texts becomes requests of at most
//     [WithBatchSize] texts;
//   - concurrency: at most [WithConcurrency] requests in flight, over all
//     concurrent Embed calls;
//   - a rate limit: at most [WithRateLimit] requests per second (a token
//     bucket, golang.org/x/time/rate), retries included;
//   - retries: a request that fails with [ErrEmbedTransient] (or with an
//     error the inner embedder did not classify) is retried with
//     exponential backoff and jitter (github.com/cenkalti/backoff/v4),
//     waiting at least the Retry-After the service asked for, until
//     [WithMaxRetryTime] is spent;
//   - per-text isolation: when a request of several texts fails with
//     [ErrEmbedPermanent] without saying which text is at fault (an HTTP
//     400 or 413 for the batch), it is split in halves, recursively, so
//     that only the texts that fail on their own are reported, in a
//     *[PartialError], and all others are embedded.
//
// [ErrEmbedRejected] (wrong key, URL or model) is returned at once. Its Embed
// keeps the [Embedder] contract. It is safe for concurrent use.
type BatchEmbedder struct {
	inner       Embedder
	batchSize   int
	sem         chan struct{}
	limiter     *rate.Limiter
	initial     time.Duration
	maxInterval time.Duration
	maxElapsed  time.Duration
	observer    EmbedObserver
	log         *slog.Logger
}

// Defaults of a BatchEmbedder.
const (
	// DefaultEmbedBatchSize is the most texts per request.
	DefaultEmbedBatchSize = 32
	// DefaultEmbedConcurrency is the most requests in flight.
	DefaultEmbedConcurrency = 4
	// DefaultEmbedMaxRetry is how long a request is retried.
	DefaultEmbedMaxRetry = 2 * time.Minute
)

// BatchOption configures a [BatchEmbedder].
type BatchOption func(*BatchEmbedder)

// WithBatchSize sets the most texts per request (default
// [DefaultEmbedBatchSize]).
func WithBatchSize(n int) BatchOption { return func(b *BatchEmbedder) { b.batchSize = n } }

// WithConcurrency sets the most requests in flight (default
// [DefaultEmbedConcurrency]).
func WithConcurrency(n int) BatchOption {
	return func(b *BatchEmbedder) {
		if n < 1 {
			b.sem = nil
			return
		}
		b.sem = make(chan struct{}, n)
	}
}

// WithRateLimit allows at most perSecond requests per second, with bursts of
// up to burst requests (burst < 1 counts as 1). Without it requests are not
// rate limited.
func WithRateLimit(perSecond float64, burst int) BatchOption {
	return func(b *BatchEmbedder) {
		b.limiter = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
	}
}

// WithRetryBackoff sets the first wait before a retry and the longest wait
// between two attempts (defaults 200ms and 30s); waits grow exponentially,
// with ±50% jitter. A longer Retry-After of the service wins.
func WithRetryBackoff(initial, maxInterval time.Duration) BatchOption {
	return func(b *BatchEmbedder) { b.initial, b.maxInterval = initial, maxInterval }
}

// WithMaxRetryTime sets how long a request keeps being retried before Embed
// gives up with an error wrapping the last [ErrEmbedTransient] (default
// [DefaultEmbedMaxRetry]). 0 retries until the context ends.
func WithMaxRetryTime(d time.Duration) BatchOption {
	return func(b *BatchEmbedder) { b.maxElapsed = d }
}

// WithObserver reports every request to o (metrics).
func WithObserver(o EmbedObserver) BatchOption { return func(b *BatchEmbedder) { b.observer = o } }

// WithBatchLogger logs retries (Warn) and texts that fail permanently
// (Info) to l; the default discards them. Messages never contain an API key.
func WithBatchLogger(l *slog.Logger) BatchOption { return func(b *BatchEmbedder) { b.log = l } }

// NewBatchEmbedder wraps inner. Bad option values give an error wrapping
// [ErrInvalidOption] that names the option.
func NewBatchEmbedder(inner Embedder, opts ...BatchOption) (*BatchEmbedder, error) {
	b := &BatchEmbedder{
		inner:       inner,
		batchSize:   DefaultEmbedBatchSize,
		sem:         make(chan struct{}, DefaultEmbedConcurrency),
		initial:     200 * time.Millisecond,
		maxInterval: 30 * time.Second,
		maxElapsed:  DefaultEmbedMaxRetry,
		log:         slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if o != nil {
			o(b)
		}
	}
	switch {
	case inner == nil:
		return nil, fmt.Errorf("vecsink: NewBatchEmbedder: inner embedder is nil: %w", ErrInvalidOption)
	case b.batchSize < 1:
		return nil, fmt.Errorf("vecsink: WithBatchSize(%d): must be at least 1: %w", b.batchSize, ErrInvalidOption)
	case b.sem == nil:
		return nil, fmt.Errorf("vecsink: WithConcurrency: must be at least 1: %w", ErrInvalidOption)
	case b.limiter != nil && !(b.limiter.Limit() > 0):
		return nil, fmt.Errorf("vecsink: WithRateLimit(%v): must be positive: %w", float64(b.limiter.Limit()), ErrInvalidOption)
	case b.initial <= 0 || b.maxInterval < b.initial:
		return nil, fmt.Errorf("vecsink: WithRetryBackoff(%s, %s): want 0 < initial <= max: %w", b.initial, b.maxInterval, ErrInvalidOption)
	case b.maxElapsed < 0:
		return nil, fmt.Errorf("vecsink: WithMaxRetryTime(%s): must not be negative: %w", b.maxElapsed, ErrInvalidOption)
	case b.log == nil:
		return nil, fmt.Errorf("vecsink: WithBatchLogger(nil): %w", ErrInvalidOption)
	}
	return b, nil
}

// Embed embeds texts in batches, concurrently, within the rate limit,
// retrying transient failures and isolating texts that fail permanently.
// It returns as [Embedder] says: all vectors; all but the failed texts' with
// a *[PartialError]; or nil and the error (rejected, retries spent, or the
// context's) that stopped it, after canceling the requests still running.
func (b *BatchEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return [][]float32{}, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make([][]float32, len(texts))
	var (
		mu       sync.Mutex
		fails    []*EmbedError
		firstErr error
		wg       sync.WaitGroup
	)
	for start := 0; start < len(texts); start += b.batchSize {
		end := min(start+b.batchSize, len(texts))
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := b.embedRange(ctx, texts[start:end], start, out)
			mu.Lock()
			defer mu.Unlock()
			fails = append(fails, f...)
			if err != nil && firstErr == nil {
				firstErr = err
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if len(fails) > 0 {
		slices.SortFunc(fails, func(a, b *EmbedError) int { return a.Index - b.Index })
		return out, &PartialError{Failures: fails}
	}
	return out, nil
}

// embedRange embeds texts, which start at index base of the Embed call, into
// out[base:], and returns the texts that failed permanently.
func (b *BatchEmbedder) embedRange(ctx context.Context, texts []string, base int, out [][]float32) ([]*EmbedError, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	vecs, err := b.request(ctx, texts)
	var pe *PartialError
	var ee *EmbedError
	switch {
	case err == nil:
		var fails []*EmbedError
		for i, v := range vecs {
			if v == nil {
				fails = append(fails, b.failed(&EmbedError{Kind: EmbedPermanent, Index: i, Message: "the embedder returned no vector for this text"}, base))
				continue
			}
			out[base+i] = v
		}
		return fails, nil
	case errors.As(err, &pe) && len(vecs) == len(texts):
		var fails []*EmbedError
		for i, v := range vecs {
			if f := pe.Failed(i); f != nil {
				fails = append(fails, b.failed(f, base))
			} else if v != nil {
				out[base+i] = v
			} else {
				fails = append(fails, b.failed(&EmbedError{Kind: EmbedPermanent, Index: i, Message: "the embedder returned no vector for this text"}, base))
			}
		}
		return fails, nil
	case pe == nil && errors.As(err, &ee) && ee.Kind == EmbedPermanent:
		if ee.Index >= 0 && ee.Index < len(texts) {
			// The embedder named the text at fault: redo the others.
			fails := []*EmbedError{b.failed(ee, base)}
			return b.embedHalves(ctx, texts, base, out, ee.Index, ee.Index+1, fails)
		}
		if len(texts) == 1 {
			return []*EmbedError{b.failed(ee.withIndex(0), base)}, nil
		}
		// Some text of the request is at fault, or the request is too
		// large: bisect.
		mid := len(texts) / 2
		return b.embedHalves(ctx, texts, base, out, mid, mid, nil)
	case pe != nil:
		// A *PartialError with a result of the wrong length breaks the
		// contract; its failures cannot be trusted.
		return nil, &EmbedError{Kind: EmbedPermanent, Index: -1, Message: fmt.Sprintf("the embedder returned %d vectors for %d texts", len(vecs), len(texts)), Err: err}
	default:
		return nil, err
	}
}

// embedHalves embeds texts[:i] and texts[j:] concurrently, adding their
// failures to fails.
func (b *BatchEmbedder) embedHalves(ctx context.Context, texts []string, base int, out [][]float32, i, j int, fails []*EmbedError) ([]*EmbedError, error) {
	var (
		wg      sync.WaitGroup
		leftF   []*EmbedError
		leftErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		leftF, leftErr = b.embedRange(ctx, texts[:i], base, out)
	}()
	rightF, rightErr := b.embedRange(ctx, texts[j:], base+j, out)
	wg.Wait()
	if leftErr != nil {
		return nil, leftErr
	}
	if rightErr != nil {
		return nil, rightErr
	}
	return append(append(fails, leftF...), rightF...), nil
}

// failed returns f re-indexed into the Embed call, and logs it.
func (b *BatchEmbedder) failed(f *EmbedError, base int) *EmbedError {
	g := f.withIndex(base + max(f.Index, 0))
	b.log.Info("vecsink: text failed permanently", "index", g.Index, "err", g.Error())
	return g
}

// request sends one request, retrying transient failures.
func (b *BatchEmbedder) request(ctx context.Context, texts []string) ([][]float32, error) {
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(b.initial),
		backoff.WithMaxInterval(b.maxInterval),
		backoff.WithMaxElapsedTime(b.maxElapsed),
	)
	start := time.Now()
	for attempt := 1; ; attempt++ {
		vecs, err := b.once(ctx, texts)
		if err == nil {
			return vecs, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("vecsink: embedding: %w", context.Cause(ctx))
		}
		if EmbedErrorKindOf(err) != EmbedTransient {
			return vecs, err
		}
		wait := bo.NextBackOff()
		var ee *EmbedError
		if errors.As(err, &ee) && ee.RetryAfter > wait && wait != backoff.Stop {
			wait = ee.RetryAfter
		}
		if wait == backoff.Stop || (b.maxElapsed > 0 && time.Since(start)+wait > b.maxElapsed) {
			b.log.Warn("vecsink: embedding request failed; giving up", "texts", len(texts), "attempts", attempt, "err", err.Error())
			return nil, fmt.Errorf("vecsink: embedding: giving up after %d attempts in %s: %w", attempt, time.Since(start).Round(time.Millisecond), err)
		}
		b.log.Warn("vecsink: embedding request failed; retrying", "texts", len(texts), "attempt", attempt, "wait", wait, "err", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("vecsink: embedding: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// once sends one request within the concurrency and rate limits.
func (b *BatchEmbedder) once(ctx context.Context, texts []string) ([][]float32, error) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("vecsink: embedding: %w", context.Cause(ctx))
	}
	defer func() { <-b.sem }()
	if b.limiter != nil {
		if err := b.limiter.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("vecsink: embedding: %w", context.Cause(ctx))
			}
			// The wait would outlast the context's deadline.
			return nil, fmt.Errorf("vecsink: embedding: rate limit: %v: %w", err, context.DeadlineExceeded)
		}
	}
	t0 := time.Now()
	vecs, err := b.inner.Embed(ctx, texts)
	if err == nil && len(vecs) != len(texts) {
		vecs, err = nil, &EmbedError{Kind: EmbedPermanent, Index: -1, Message: fmt.Sprintf("the embedder returned %d vectors for %d texts", len(vecs), len(texts))}
	}
	if b.observer != nil {
		b.observer.ObserveEmbedRequest(report(len(texts), time.Since(t0), err, ctx.Err() != nil))
	}
	return vecs, err
}

func report(texts int, latency time.Duration, err error, canceled bool) EmbedRequestReport {
	r := EmbedRequestReport{Texts: texts, Latency: latency, Err: err}
	if err == nil {
		return r
	}
	var pe *PartialError
	var ee *EmbedError
	switch {
	case errors.As(err, &pe):
		r.FailedTexts = len(pe.Failures)
	case errors.As(err, &ee) && ee.Kind == EmbedPermanent && (ee.Index >= 0 || texts == 1):
		r.Kind, r.FailedTexts = EmbedPermanent, 1
	default:
		r.Kind = EmbedErrorKindOf(err)
		r.Canceled = canceled || r.Kind == 0
	}
	return r
}
