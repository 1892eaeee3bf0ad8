package embedhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxErrorBody bounds how much of a non-2xx body is read for its message.
const maxErrorBody = 8 << 10

// maxBody bounds the size of a successful response body.
const maxBody = 512 << 20

// Redacted replaces the API key wherever it would appear in a message.
const Redacted = "[REDACTED]"

// Client posts JSON requests to an embedding service.
type Client struct {
	// HTTP is the client used for every request; NewHTTPClient when nil.
	HTTP *http.Client
	// APIKey, when not empty, is sent as "Authorization: Bearer KEY". It
	// never appears in an error: every message is passed through Redact.
	APIKey string
	// Timeout bounds each request, body included; 0 means no bound beyond
	// the caller's context. A request that runs into it gives a
	// *TransportError with Timeout set.
	Timeout time.Duration
}

// NewHTTPClient returns an http.Client whose transport keeps enough idle
// connections per host for concurrent embedding requests (net/http's default
// keeps 2, which makes a client with more requests in flight reconnect all
// the time).
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr}
}

// StatusError is a non-2xx answer.
type StatusError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the provider's error message (from a JSON error body when
	// there is one, else the start of the body), with the key redacted.
	Message string
	// RetryAfter is the delay the Retry-After header asked for; 0 when the
	// header was absent or unparsable.
	RetryAfter time.Duration
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("HTTP %d: %s", e.StatusCode, e.Message)
}

// TransportError is a failure to get an answer at all: connection refused or
// reset, a timeout, a body that cannot be read. Its message never contains
// the key.
type TransportError struct {
	// Message describes the failure, with the key redacted.
	Message string
	// Timeout reports a request that ran into its deadline.
	Timeout bool
	// Err is the cause, for errors.Is (context.DeadlineExceeded, syscall
	// errors). Its own message is not used.
	Err error
}

// Error implements error.
func (e *TransportError) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// Redact replaces every occurrence of key in s by [Redacted].
func Redact(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, Redacted)
}

// PostJSON marshals req, posts it to url and decodes a 2xx JSON answer into
// resp, within Timeout. A non-2xx answer gives a *StatusError, a failure to get or read an
// answer (or an answer cut by Timeout) a *TransportError, an undecodable 2xx
// body a plain error; when ctx itself is done, the error wraps its cause. No message contains the key.
func (c *Client) PostJSON(ctx context.Context, url string, req, resp any) error {
	parent := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %s", Redact(err.Error(), c.APIKey))
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	hresp, err := hc.Do(hreq)
	if err != nil {
		return c.transportError(parent, "POST "+url, err)
	}
	defer func() {
		// Drain a little so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(hresp.Body, 64<<10))
		hresp.Body.Close()
	}()
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(hresp.Body, maxErrorBody))
		return &StatusError{
			StatusCode: hresp.StatusCode,
			Message:    Redact(errorMessage(b), c.APIKey),
			RetryAfter: ParseRetryAfter(hresp.Header.Get("Retry-After"), time.Now()),
		}
	}
	b, err := io.ReadAll(io.LimitReader(hresp.Body, maxBody))
	if err != nil {
		return c.transportError(parent, "read response of "+url, err)
	}
	if err := json.Unmarshal(SanitizeJSON(b), resp); err != nil {
		return fmt.Errorf("decode response of %s: %s", url, Redact(err.Error(), c.APIKey))
	}
	return nil
}

func (c *Client) transportError(parent context.Context, what string, err error) error {
	if parent.Err() != nil {
		// The caller's context ended: not the service's fault.
		return fmt.Errorf("%s: %w", what, context.Cause(parent))
	}
	var te interface{ Timeout() bool }
	timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout())
	return &TransportError{Message: Redact(err.Error(), c.APIKey), Timeout: timeout, Err: err}
}

// errorMessage extracts the message of an error body: OpenAI's
// {"error":{"message":...}}, Ollama's {"error":"..."}, {"message":...}, or
// else the trimmed text.
func errorMessage(b []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(b, &v) == nil {
		var s string
		if json.Unmarshal(v.Error, &s) == nil && s != "" {
			return s
		}
		var o struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(v.Error, &o) == nil && o.Message != "" {
			return o.Message
		}
		if v.Message != "" {
			return v.Message
		}
	}
	s := strings.TrimSpace(string(b))
	const max = 500
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
