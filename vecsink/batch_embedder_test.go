package vecsink_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("text number %d about topic %d", i, i%7)
	}
	return out
}

// fastRetry keeps retry waits short in tests.
var fastRetry = vecsink.WithRetryBackoff(5*time.Millisecond, 50*time.Millisecond)

func newBatch(t *testing.T, f *fakeEmbed, p provider, opts ...vecsink.BatchOption) (*vecsink.BatchEmbedder, *vecsink.EmbedStats) {
	t.Helper()
	e, err := p.make(f, vecsink.WithDimensions(f.dim), vecsink.WithRequestTimeout(200*time.Millisecond))
	require.NoError(t, err)
	stats := &vecsink.EmbedStats{}
	b, err := vecsink.NewBatchEmbedder(e, append([]vecsink.BatchOption{fastRetry, vecsink.WithObserver(stats)}, opts...)...)
	require.NoError(t, err)
	return b, stats
}

func TestBatchEmbedderBatchesAndConcurrency(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeEmbed(t, 8)
			f.latency = 20 * time.Millisecond
			b, stats := newBatch(t, f, p, vecsink.WithBatchSize(8), vecsink.WithConcurrency(3))
			in := texts(100)
			got, err := b.Embed(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, f.want(in...), got)
			sizes := f.batchSizes()
			slices.Sort(sizes)
			require.Equal(t, []int{4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8}, sizes)
			require.LessOrEqual(t, f.maxIn.Load(), int64(3))
			require.GreaterOrEqual(t, f.maxIn.Load(), int64(2), "requests ran concurrently")
			s := stats.Snapshot()
			require.Equal(t, int64(13), s.Requests)
			require.Equal(t, int64(100), s.Texts)
			require.Zero(t, s.TransientErrs+s.PermanentErrs+s.RejectedErrs+s.CanceledErrs+s.FailedTexts)
			require.GreaterOrEqual(t, s.MeanLatency(), 20*time.Millisecond)
		})
	}
}

func TestBatchEmbedderConcurrencyAcrossCalls(t *testing.T) {
	t.Parallel()
	f := newFakeEmbed(t, 8)
	f.latency = 10 * time.Millisecond
	b, _ := newBatch(t, f, providers[0], vecsink.WithBatchSize(4), vecsink.WithConcurrency(2))
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := texts(12 + i)
			got, err := b.Embed(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, f.want(in...), got)
		}()
	}
	wg.Wait()
	require.Equal(t, int64(2), f.maxIn.Load(), "the limit holds over concurrent Embed calls")
}

func TestBatchEmbedderRateLimit(t *testing.T) {
	t.Parallel()
	f := newFakeEmbed(t, 8)
	b, _ := newBatch(t, f, providers[1], vecsink.WithBatchSize(1), vecsink.WithConcurrency(8), vecsink.WithRateLimit(20, 1))
	start := time.Now()
	in := texts(10)
	got, err := b.Embed(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, f.want(in...), got)
	// 10 requests at 20/s with a burst of 1: the last starts 9/20 s after the first.
	require.GreaterOrEqual(t, time.Since(start), 440*time.Millisecond)
	require.Equal(t, int64(10), f.requests.Load())
}

func TestBatchEmbedderRetries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		fault   func(n int64) fault
		minWait time.Duration
		retries int64
	}{
		{"429 Retry-After 1s", func(n int64) fault {
			if n == 1 {
				return fault{status: 429, retryAfter: "1"}
			}
			return fault{}
		}, time.Second, 1},
		{"500 twice", func(n int64) fault {
			if n <= 2 {
				return fault{status: 500}
			}
			return fault{}
		}, 0, 2},
		{"timeout", func(n int64) fault {
			if n == 1 {
				return fault{sleep: time.Second} // beyond the 200ms request timeout
			}
			return fault{}
		}, 200 * time.Millisecond, 1},
	}
	for _, p := range providers {
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				f := newFakeEmbed(t, 8)
				f.fault = func(n int64, _ []string) fault { return tc.fault(n) }
				b, stats := newBatch(t, f, p, vecsink.WithBatchSize(50))
				in := texts(5)
				start := time.Now()
				got, err := b.Embed(context.Background(), in)
				require.NoError(t, err)
				require.Equal(t, f.want(in...), got)
				require.GreaterOrEqual(t, time.Since(start), tc.minWait)
				s := stats.Snapshot()
				require.Equal(t, tc.retries, s.TransientErrs)
				require.Equal(t, tc.retries+1, s.Requests)
			})
		}
	}
}

func TestBatchEmbedderServiceGoesAway(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeEmbed(t, 8)
			b, stats := newBatch(t, f, p, vecsink.WithBatchSize(4), vecsink.WithConcurrency(2))
			in := texts(30)
			got, err := b.Embed(context.Background(), in[:10])
			require.NoError(t, err)
			require.Equal(t, f.want(in[:10]...), got)

			f.goAway(300 * time.Millisecond)
			start := time.Now()
			got, err = b.Embed(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, f.want(in...), got, "every text catches up when the service returns")
			require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
			require.Positive(t, stats.Snapshot().TransientErrs)
		})
	}
}

func TestBatchEmbedderIsolatesBadTexts(t *testing.T) {
	t.Parallel()
	in := texts(20)
	in[5], in[13] = "BAD one", "BAD two"
	cases := []struct {
		name  string
		fault func(texts []string) fault
		msg   string
	}{
		{"400 for the batch", func(texts []string) fault {
			for _, s := range texts {
				if strings.HasPrefix(s, "BAD") {
					return fault{status: 400, body: `{"error":{"message":"input is not allowed"}}`}
				}
			}
			return fault{}
		}, "HTTP 400: input is not allowed"},
		{"wrong dimension", func(texts []string) fault {
			if i := slices.Index(texts, "BAD one"); i >= 0 {
				return fault{wrongDim: "BAD one", nan: "BAD two"}
			}
			return fault{nan: "BAD two"}
		}, ""},
	}
	for _, p := range providers {
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				f := newFakeEmbed(t, 8)
				f.fault = func(_ int64, texts []string) fault { return tc.fault(texts) }
				var logs strings.Builder
				b, stats := newBatch(t, f, p, vecsink.WithBatchSize(8), vecsink.WithBatchLogger(newTestLogger(&logs)))
				got, err := b.Embed(context.Background(), in)
				require.ErrorIs(t, err, vecsink.ErrEmbedPermanent)
				var pe *vecsink.PartialError
				require.ErrorAs(t, err, &pe)
				require.Len(t, pe.Failures, 2)
				require.Equal(t, 5, pe.Failures[0].Index)
				require.Equal(t, 13, pe.Failures[1].Index)
				require.Same(t, pe.Failures[1], pe.Failed(13))
				require.Nil(t, pe.Failed(12))
				if tc.msg != "" {
					require.Contains(t, pe.Failures[0].Error(), tc.msg)
				} else {
					require.Contains(t, pe.Failures[0].Error(), "embedding has 9 dimensions, want 8")
					require.Contains(t, pe.Failures[1].Error(), "is NaN")
				}
				require.Len(t, got, len(in))
				want := f.want(in...)
				for i := range in {
					if i == 5 || i == 13 {
						require.Nil(t, got[i])
					} else {
						require.Equal(t, want[i], got[i], "text %d", i)
					}
				}
				require.Equal(t, int64(2), stats.Snapshot().FailedTexts)
				require.Contains(t, logs.String(), "index=13")
				if tc.msg != "" {
					// Bisection: batches [0,8) and [8,16) split down to the bad text,
					// [16,20) goes through at once.
					require.Equal(t, int64(1+2*(1+2+2+2)), f.requests.Load())
				} else {
					require.Equal(t, int64(3), f.requests.Load(), "per-vector failures need no bisection")
				}
			})
		}
	}
}

func TestBatchEmbedderStops(t *testing.T) {
	t.Parallel()
	t.Run("rejected at once", func(t *testing.T) {
		t.Parallel()
		f := newFakeEmbed(t, 8)
		f.fault = func(int64, []string) fault { return fault{status: 401} }
		b, stats := newBatch(t, f, providers[0], vecsink.WithConcurrency(1))
		got, err := b.Embed(context.Background(), texts(3))
		require.Nil(t, got)
		require.ErrorIs(t, err, vecsink.ErrEmbedRejected)
		require.Equal(t, int64(1), f.requests.Load())
		require.Equal(t, int64(1), stats.Snapshot().RejectedErrs)
	})
	t.Run("gives up after the max retry time", func(t *testing.T) {
		t.Parallel()
		f := newFakeEmbed(t, 8)
		f.fault = func(int64, []string) fault { return fault{status: 503} }
		b, _ := newBatch(t, f, providers[1], vecsink.WithMaxRetryTime(150*time.Millisecond))
		start := time.Now()
		got, err := b.Embed(context.Background(), texts(3))
		require.Nil(t, got)
		require.ErrorIs(t, err, vecsink.ErrEmbedTransient)
		require.ErrorContains(t, err, "giving up after")
		require.Less(t, time.Since(start), 2*time.Second)
		require.Greater(t, f.requests.Load(), int64(1))
	})
	t.Run("Retry-After beyond the max retry time", func(t *testing.T) {
		t.Parallel()
		f := newFakeEmbed(t, 8)
		f.fault = func(int64, []string) fault { return fault{status: 429, retryAfter: "3600"} }
		b, _ := newBatch(t, f, providers[0], vecsink.WithMaxRetryTime(time.Minute))
		_, err := b.Embed(context.Background(), texts(3))
		require.ErrorIs(t, err, vecsink.ErrEmbedTransient)
		var ee *vecsink.EmbedError
		require.ErrorAs(t, err, &ee)
		require.Equal(t, time.Hour, ee.RetryAfter, "the caller learns when to come back")
		require.Equal(t, int64(1), f.requests.Load())
	})
	t.Run("context deadline", func(t *testing.T) {
		t.Parallel()
		f := newFakeEmbed(t, 8)
		f.fault = func(int64, []string) fault { return fault{status: 500} }
		b, stats := newBatch(t, f, providers[0], vecsink.WithMaxRetryTime(0))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		got, err := b.Embed(ctx, texts(70))
		require.Nil(t, got)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, vecsink.EmbedErrorKind(0), vecsink.EmbedErrorKindOf(err))
		require.Positive(t, stats.Snapshot().TransientErrs)
	})
}

// flaky is an Embedder outside this package that does not classify its
// errors: the BatchEmbedder treats them as transient.
type flaky struct {
	mu    sync.Mutex
	calls int
}

func (f *flaky) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	f.mu.Lock()
	f.calls++
	c := f.calls
	f.mu.Unlock()
	if c == 1 {
		return nil, fmt.Errorf("socket hiccup")
	}
	return vecsink.HashEmbedder(4).Embed(ctx, texts)
}

func TestBatchEmbedderCustomEmbedder(t *testing.T) {
	t.Parallel()
	fl := &flaky{}
	b, err := vecsink.NewBatchEmbedder(fl, fastRetry)
	require.NoError(t, err)
	got, err := b.Embed(context.Background(), []string{"a b", "c"})
	require.NoError(t, err)
	want, err := vecsink.HashEmbedder(4).Embed(context.Background(), []string{"a b", "c"})
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, 2, fl.calls)
	require.Equal(t, vecsink.EmbedTransient, vecsink.EmbedErrorKindOf(fmt.Errorf("x")))
}

func TestNewBatchEmbedderErrors(t *testing.T) {
	t.Parallel()
	h := vecsink.HashEmbedder(4)
	for _, tc := range []struct {
		opt vecsink.BatchOption
		msg string
	}{
		{vecsink.WithBatchSize(0), "WithBatchSize(0)"},
		{vecsink.WithConcurrency(0), "WithConcurrency"},
		{vecsink.WithRateLimit(0, 1), "WithRateLimit(0)"},
		{vecsink.WithRetryBackoff(time.Second, time.Millisecond), "WithRetryBackoff(1s, 1ms)"},
		{vecsink.WithMaxRetryTime(-1), "WithMaxRetryTime(-1ns)"},
	} {
		_, err := vecsink.NewBatchEmbedder(h, tc.opt)
		require.ErrorIs(t, err, vecsink.ErrInvalidOption)
		require.ErrorContains(t, err, tc.msg)
	}
	_, err := vecsink.NewBatchEmbedder(nil)
	require.ErrorContains(t, err, "inner embedder is nil")
}
