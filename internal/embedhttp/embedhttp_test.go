package embedhttp

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		" 120 ":                         2 * time.Minute,
		"0.5":                           500 * time.Millisecond,
		"-3":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:35 GMT": 30 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0, // past
	} {
		require.Equal(t, want, ParseRetryAfter(v, now), "%q", v)
	}
}

func TestSanitizeJSON(t *testing.T) {
	t.Parallel()
	in := []byte(`{"s":"NaN \"Infinity\" \\","v":[1,NaN,-Infinity,Infinity,2e400]}`)
	out := SanitizeJSON(in)
	require.Equal(t, `{"s":"NaN \"Infinity\" \\","v":[1,null,null,null,2e400]}`, string(out))
	plain := []byte(`{"v":[1,2]}`)
	require.Same(t, &plain[0], &SanitizeJSON(plain)[0], "no copy without literals")
}

func TestVectorUnmarshal(t *testing.T) {
	t.Parallel()
	var v struct{ V []Vector }
	require.NoError(t, json.Unmarshal(SanitizeJSON([]byte(`{"V":[[1, -0.5 ,NaN,1e39,-1e39],[],null]}`)), &v))
	require.Len(t, v.V, 3)
	require.Equal(t, float32(1), v.V[0][0])
	require.Equal(t, float32(-0.5), v.V[0][1])
	require.True(t, math.IsNaN(float64(v.V[0][2])))
	require.True(t, math.IsInf(float64(v.V[0][3]), 1))
	require.True(t, math.IsInf(float64(v.V[0][4]), -1))
	require.Equal(t, Vector{}, v.V[1])
	require.Nil(t, v.V[2])
	require.ErrorContains(t, json.Unmarshal([]byte(`{"V":[[1,"x"]]}`), &v), `element 1: "\"x\"" is not a number`)
	require.ErrorContains(t, json.Unmarshal([]byte(`{"V":[{"a":1}]}`), &v), "not an array")
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	require.Equal(t, "bad input", errorMessage([]byte(`{"error":{"message":"bad input","type":"invalid_request_error"}}`)))
	require.Equal(t, "model not found", errorMessage([]byte(`{"error":"model not found"}`)))
	require.Equal(t, "overloaded", errorMessage([]byte(`{"message":"overloaded"}`)))
	require.Equal(t, "Bad Gateway", errorMessage([]byte("  Bad Gateway\n")))
}

func TestPostJSON(t *testing.T) {
	t.Parallel()
	const key = "sk-abc"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			require.Equal(t, "Bearer "+key, r.Header.Get("Authorization"))
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			_, _ = w.Write([]byte(`{"embeddings":[[1,2]]}`))
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/busy":
			w.Header().Set("Retry-After", "3")
			http.Error(w, `{"error":"busy, key `+key+`"}`, http.StatusServiceUnavailable)
		case "/garbage":
			_, _ = w.Write([]byte(`{"embeddings":`))
		}
	}))
	defer srv.Close()
	c := Client{HTTP: NewHTTPClient(), APIKey: key, Timeout: 100 * time.Millisecond}
	ctx := context.Background()

	var resp OllamaResponse
	require.NoError(t, c.PostJSON(ctx, srv.URL+"/ok", OllamaRequest{Model: "m", Input: []string{"a"}}, &resp))
	require.Equal(t, []Vector{{1, 2}}, resp.Embeddings)

	err := c.PostJSON(ctx, srv.URL+"/busy", OllamaRequest{}, &resp)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, StatusError{StatusCode: 503, Message: "busy, key [REDACTED]", RetryAfter: 3 * time.Second}, *se)

	err = c.PostJSON(ctx, srv.URL+"/slow", OllamaRequest{}, &resp)
	var te *TransportError
	require.ErrorAs(t, err, &te)
	require.True(t, te.Timeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = c.PostJSON(cctx, srv.URL+"/ok", OllamaRequest{}, &resp)
	require.ErrorIs(t, err, context.Canceled)
	var te2 *TransportError
	require.False(t, errors.As(err, &te2), "the caller's cancellation is no transport error")

	err = c.PostJSON(ctx, srv.URL+"/garbage", OllamaRequest{}, &resp)
	require.ErrorContains(t, err, "decode response")
}
