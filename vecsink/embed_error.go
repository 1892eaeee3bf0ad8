package vecsink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors that classify embedding failures. Every *[EmbedError] is
// one of them under errors.Is; see [EmbedErrorKind].
var (
	// ErrEmbedTransient: the service is unavailable for now (HTTP 408, 429,
	// 5xx, a timeout, a refused or reset connection). Retry later, honouring
	// EmbedError.RetryAfter; nothing is wrong with the texts.
	ErrEmbedTransient = errors.New("vecsink: transient embedding failure")
	// ErrEmbedPermanent: the input can never be embedded as it is (HTTP 400,
	// 413, 422 on it, or a vector of the wrong dimension, with NaN or Inf, or
	// missing from the answer). When EmbedError.Index is set the failure
	// belongs to that text alone.
	ErrEmbedPermanent = errors.New("vecsink: permanent embedding failure")
	// ErrEmbedRejected: the service refuses every request whatever the text
	// (HTTP 401, 403, 404, 405: a wrong key, URL or model name). Neither
	// retrying soon nor parking the texts helps; the configuration must be
	// fixed.
	ErrEmbedRejected = errors.New("vecsink: embedding request rejected")
)

// EmbedErrorKind classifies an [EmbedError].
type EmbedErrorKind int

// The kinds of embedding failure, matching the sentinel errors.
const (
	// EmbedTransient matches ErrEmbedTransient.
	EmbedTransient EmbedErrorKind = iota + 1
	// EmbedPermanent matches ErrEmbedPermanent.
	EmbedPermanent
	// EmbedRejected matches ErrEmbedRejected.
	EmbedRejected
)

// String returns "transient", "permanent" or "rejected".
func (k EmbedErrorKind) String() string {
	switch k {
	case EmbedTransient:
		return "transient"
	case EmbedPermanent:
		return "permanent"
	case EmbedRejected:
		return "rejected"
	default:
		return fmt.Sprintf("EmbedErrorKind(%d)", int(k))
	}
}

func (k EmbedErrorKind) sentinel() error {
	switch k {
	case EmbedTransient:
		return ErrEmbedTransient
	case EmbedPermanent:
		return ErrEmbedPermanent
	case EmbedRejected:
		return ErrEmbedRejected
	}
	return nil
}

// EmbedError is one embedding failure. Its message never contains an API
// key.
type EmbedError struct {
	// Kind says what the caller should do.
	Kind EmbedErrorKind
	// Index is the position, in the texts passed to Embed, of the one text
	// this failure belongs to, or -1 when it concerns the whole request.
	Index int
	// Provider names the client: "openai", "ollama", "hash", or "" for
	// failures raised outside a client.
	Provider string
	// StatusCode is the HTTP status of the answer, 0 when there was none.
	StatusCode int
	// RetryAfter is the delay the service asked for (Retry-After), 0 when
	// none.
	RetryAfter time.Duration
	// Message is the provider's message or a description of the failure,
	// with any API key redacted.
	Message string
	// Err is the underlying cause, if any (for errors.Is, e.g.
	// context.DeadlineExceeded of a request timeout); its own text is
	// not used in Error().
	Err error
}

// Error implements error: "vecsink: openai: permanent embedding failure of
// text 3: HTTP 400: input too long".
func (e *EmbedError) Error() string {
	var b strings.Builder
	b.WriteString("vecsink: ")
	if e.Provider != "" {
		b.WriteString(e.Provider)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s embedding failure", e.Kind)
	if e.Index >= 0 {
		fmt.Fprintf(&b, " of text %d", e.Index)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is matches the sentinel of the error's kind.
func (e *EmbedError) Is(target error) bool {
	s := e.Kind.sentinel()
	return s != nil && target == s
}

// Unwrap returns the cause.
func (e *EmbedError) Unwrap() error { return e.Err }

// withIndex returns a copy of e for text index i.
func (e *EmbedError) withIndex(i int) *EmbedError {
	c := *e
	c.Index = i
	return &c
}

// PartialError is returned by Embed with a full-length result when some
// texts failed permanently and the others were embedded: the result holds
// nil at the failed positions.
type PartialError struct {
	// Failures holds one error per failed text, ordered by Index; each has
	// Kind EmbedPermanent.
	Failures []*EmbedError
}

// Error implements error.
func (e *PartialError) Error() string {
	if len(e.Failures) == 1 {
		return e.Failures[0].Error()
	}
	idx := make([]string, 0, len(e.Failures))
	for i, f := range e.Failures {
		if i == 5 {
			idx = append(idx, "…")
			break
		}
		idx = append(idx, fmt.Sprint(f.Index))
	}
	return fmt.Sprintf("vecsink: %d texts failed permanently (texts %s); first: %v",
		len(e.Failures), strings.Join(idx, ", "), e.Failures[0])
}

// Unwrap returns the failures, so that errors.Is(err, ErrEmbedPermanent) and
// errors.As(err, &embedErr) see them.
func (e *PartialError) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f
	}
	return out
}

// Failed returns the failure of text i, or nil if text i was embedded.
func (e *PartialError) Failed(i int) *EmbedError {
	for _, f := range e.Failures {
		if f.Index == i {
			return f
		}
	}
	return nil
}

// EmbedErrorKindOf classifies an error returned by an [Embedder]: the kind of
// the *EmbedError it wraps (a *PartialError counts as EmbedPermanent), 0 for
// nil or an error wrapping context.Canceled or context.DeadlineExceeded
// without an EmbedError (the caller's context ended), and EmbedTransient for
// any other error, since an error the embedder did not classify is not known
// to be the text's fault.
func EmbedErrorKindOf(err error) EmbedErrorKind {
	if err == nil {
		return 0
	}
	var pe *PartialError
	if errors.As(err, &pe) {
		return EmbedPermanent
	}
	var ee *EmbedError
	if errors.As(err, &ee) {
		return ee.Kind
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0
	}
	return EmbedTransient
}
