package vecsink

import (
	"errors"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// Sentinel errors of the query side. Callers test them with errors.Is.
// A model whose table was never migrated gives an error wrapping
// outbox.ErrNotRegistered.
var (
	// ErrInvalidK reports a k below 1 or above MaxK.
	ErrInvalidK = errors.New("vecsink: k out of range")
	// ErrInvalidOption reports a bad option value (an empty WithFilter).
	ErrInvalidOption = errors.New("vecsink: invalid option")
	// ErrNoVec reports a model that has no vec tag (its registry spec has no
	// vec0 sidecar).
	ErrNoVec = errors.New("vecsink: model has no vec sidecar")
	// ErrBadVector reports a query vector whose length is not the model's
	// dim, that holds NaN or Inf, or that is all zeros under metric=cosine.
	// It is outbox.ErrBadVector, so one errors.Is covers writes and queries.
	ErrBadVector = outbox.ErrBadVector
)
