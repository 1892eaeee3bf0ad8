package vecsink_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

func TestHTTPEmbedderExact(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeEmbed(t, 16)
			e, err := p.make(f, vecsink.WithAPIKey("k-123"), vecsink.WithDimensions(16))
			require.NoError(t, err)
			require.Equal(t, p.name, e.Provider())
			texts := []string{"ocean sailing", "baking bread", "", "ocean"}
			got, err := e.Embed(context.Background(), texts)
			require.NoError(t, err)
			require.Equal(t, f.want(texts...), got)
			require.Equal(t, []string{"Bearer k-123"}, f.auth)
			require.Equal(t, "m", f.bodies[0]["model"])
			if p.name == "ollama" {
				require.Equal(t, false, f.bodies[0]["truncate"], "ollama must not truncate silently")
			}
			got, err = e.Embed(context.Background(), nil)
			require.NoError(t, err)
			require.Empty(t, got)
			require.Equal(t, int64(1), f.requests.Load(), "no request for no texts")
		})
	}
}

func TestHTTPEmbedderFailures(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, vecs [][]float32, err error)
	whole := func(kind vecsink.EmbedErrorKind, sentinel error, status int, retryAfter time.Duration, msg string) check {
		return func(t *testing.T, vecs [][]float32, err error) {
			require.Nil(t, vecs)
			require.ErrorIs(t, err, sentinel)
			var ee *vecsink.EmbedError
			require.ErrorAs(t, err, &ee)
			require.Equal(t, kind, ee.Kind)
			require.Equal(t, -1, ee.Index)
			require.Equal(t, status, ee.StatusCode)
			require.Equal(t, retryAfter, ee.RetryAfter)
			require.Contains(t, ee.Error(), msg)
			require.Equal(t, kind, vecsink.EmbedErrorKindOf(err))
		}
	}
	// partial expects texts[bad] to fail alone and the others to be exact.
	partial := func(bad int, msg string) check {
		return func(t *testing.T, vecs [][]float32, err error) {
			require.ErrorIs(t, err, vecsink.ErrEmbedPermanent)
			var pe *vecsink.PartialError
			require.ErrorAs(t, err, &pe)
			require.Len(t, pe.Failures, 1)
			require.Equal(t, bad, pe.Failures[0].Index)
			require.Contains(t, pe.Failures[0].Error(), msg)
			require.Len(t, vecs, 3)
			require.Nil(t, vecs[bad])
		}
	}
	texts := []string{"alpha", "beta", "gamma"}
	cases := []struct {
		name  string
		fault fault
		only  string // provider, "" for both
		check check
	}{
		{"429 with Retry-After", fault{status: 429, retryAfter: "7", body: `{"error":{"message":"slow down"}}`}, "",
			whole(vecsink.EmbedTransient, vecsink.ErrEmbedTransient, 429, 7*time.Second, "slow down")},
		{"503 with HTTP-date Retry-After in the past", fault{status: 503, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT", body: `{"error":"loading model"}`}, "",
			whole(vecsink.EmbedTransient, vecsink.ErrEmbedTransient, 503, 0, "loading model")},
		{"500", fault{status: 500, body: "boom"}, "",
			whole(vecsink.EmbedTransient, vecsink.ErrEmbedTransient, 500, 0, "HTTP 500: boom")},
		{"400 for the batch", fault{status: 400, body: `{"error":{"message":"input too long"}}`}, "",
			whole(vecsink.EmbedPermanent, vecsink.ErrEmbedPermanent, 400, 0, "input too long")},
		{"413", fault{status: 413}, "",
			whole(vecsink.EmbedPermanent, vecsink.ErrEmbedPermanent, 413, 0, "injected")},
		{"401", fault{status: 401, body: `{"error":{"message":"bad key"}}`}, "",
			whole(vecsink.EmbedRejected, vecsink.ErrEmbedRejected, 401, 0, "bad key")},
		{"404 model", fault{status: 404, body: `{"error":"model \"m\" not found"}`}, "",
			whole(vecsink.EmbedRejected, vecsink.ErrEmbedRejected, 404, 0, `model "m" not found`)},
		{"wrong dimension", fault{wrongDim: "beta"}, "", partial(1, "embedding has 9 dimensions, want 8")},
		{"NaN", fault{nan: "gamma"}, "", partial(2, "embedding element 4 is NaN")},
		{"missing item", fault{drop: "alpha"}, "openai", partial(0, "no embedding for this text")},
		{"count mismatch", fault{drop: "alpha"}, "ollama",
			whole(vecsink.EmbedPermanent, vecsink.ErrEmbedPermanent, 0, 0, "the answer has 2 embeddings for 3 texts")},
	}
	for _, p := range providers {
		for _, tc := range cases {
			if tc.only != "" && tc.only != p.name {
				continue
			}
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				f := newFakeEmbed(t, 8)
				f.fault = func(int64, []string) fault { return tc.fault }
				e, err := p.make(f, vecsink.WithDimensions(8))
				require.NoError(t, err)
				vecs, err := e.Embed(context.Background(), texts)
				tc.check(t, vecs, err)
				if vecs != nil {
					want := f.want(texts...)
					for i, v := range vecs {
						if v != nil {
							require.Equal(t, want[i], v)
						}
					}
				}
			})
		}
	}
}

func TestHTTPEmbedderTimeouts(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeEmbed(t, 8)
			f.fault = func(int64, []string) fault { return fault{sleep: 2 * time.Second} }
			e, err := p.make(f, vecsink.WithRequestTimeout(50*time.Millisecond))
			require.NoError(t, err)

			// The request timeout: the service's fault, transient.
			start := time.Now()
			_, err = e.Embed(context.Background(), []string{"a"})
			require.Less(t, time.Since(start), time.Second)
			require.ErrorIs(t, err, vecsink.ErrEmbedTransient)
			require.ErrorIs(t, err, context.DeadlineExceeded)

			// The caller's deadline: the context's error, no EmbedError.
			e2, err := p.make(f)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err = e2.Embed(ctx, []string{"a"})
			require.ErrorIs(t, err, context.DeadlineExceeded)
			var ee *vecsink.EmbedError
			require.False(t, errors.As(err, &ee), "caller's deadline is not an EmbedError: %v", err)
			require.Equal(t, vecsink.EmbedErrorKind(0), vecsink.EmbedErrorKindOf(err))
		})
	}
}

func TestHTTPEmbedderConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	e, err := vecsink.NewOpenAIEmbedder("http://"+addr+"/v1", "m")
	require.NoError(t, err)
	_, err = e.Embed(context.Background(), []string{"a"})
	require.ErrorIs(t, err, vecsink.ErrEmbedTransient)
	require.ErrorContains(t, err, "connection refused")
}

func TestNewHTTPEmbedderErrors(t *testing.T) {
	t.Parallel()
	_, err := vecsink.NewOpenAIEmbedder("localhost:8080", "m")
	require.ErrorIs(t, err, vecsink.ErrInvalidOption)
	require.ErrorContains(t, err, `base URL "localhost:8080"`)
	_, err = vecsink.NewOllamaEmbedder("http://localhost:11434", " ")
	require.ErrorContains(t, err, "model: must not be empty")
	_, err = vecsink.NewOllamaEmbedder("http://localhost:11434", "m", vecsink.WithDimensions(-1))
	require.ErrorContains(t, err, "WithDimensions(-1)")
	e, err := vecsink.NewOpenAIEmbedder("http://localhost:8000/v1/", "m")
	require.NoError(t, err)
	require.Equal(t, "http://localhost:8000/v1/embeddings", e.Endpoint())
	require.Equal(t, "m", e.Model())
}

// TestAPIKeyNeverLeaks runs a service that echoes the Authorization header in
// its error bodies, with the key from the environment: neither errors nor
// logs may contain the key.
func TestAPIKeyNeverLeaks(t *testing.T) {
	const key = "sk-secret-0123456789"
	t.Setenv(vecsink.APIKeyEnv, key)
	for _, p := range providers {
		f := newFakeEmbed(t, 8)
		var echo func(n int64, texts []string) fault
		f.fault = func(n int64, texts []string) fault { return echo(n, texts) }
		echo = func(n int64, _ []string) fault {
			f.mu.Lock()
			auth := f.auth[len(f.auth)-1]
			f.mu.Unlock()
			status := []int{500, 429, 401}[min(n-1, 2)]
			return fault{status: status, body: `{"error":{"message":"got ` + auth + `"}}`}
		}
		e, err := p.make(f)
		require.NoError(t, err)
		var logs strings.Builder
		b, err := vecsink.NewBatchEmbedder(e, vecsink.WithRetryBackoff(time.Millisecond, time.Millisecond),
			vecsink.WithBatchLogger(newTestLogger(&logs)))
		require.NoError(t, err)
		_, err = b.Embed(context.Background(), []string{"a"})
		require.ErrorIs(t, err, vecsink.ErrEmbedRejected)
		require.Equal(t, int64(3), f.requests.Load(), "500 and 429 retried, 401 not")
		require.Equal(t, "Bearer "+key, f.auth[0], "%s: the key is sent", p.name)
		require.Contains(t, err.Error(), "got Bearer [REDACTED]")
		require.NotContains(t, err.Error(), key)
		require.Contains(t, logs.String(), "retrying")
		require.NotContains(t, logs.String(), key)
		require.NotContains(t, strings.ReplaceAll(logs.String(), "[REDACTED]", ""), "sk-secret")
	}

	// WithAPIKey wins over the environment; WithAPIKey("") sends no header.
	f := newFakeEmbed(t, 8)
	for _, opt := range []vecsink.EmbedderOption{vecsink.WithAPIKey("other"), vecsink.WithAPIKey("")} {
		e, err := vecsink.NewOllamaEmbedder(f.URL(), "m", opt)
		require.NoError(t, err)
		_, err = e.Embed(context.Background(), []string{"a"})
		require.NoError(t, err)
	}
	require.Equal(t, []string{"Bearer other", ""}, f.auth)
}
