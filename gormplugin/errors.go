package gormplugin

import (
	"errors"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrBadTag reports a vec or fts5 struct tag, or a model shape, that the
	// plugin cannot index. The message names the model, the field and the key.
	ErrBadTag = errors.New("gormplugin: invalid model tag")

	// ErrInvalidVector reports a vector whose length is not the tag's dim, or
	// that holds NaN or Inf. The write it belonged to is not executed.
	ErrInvalidVector = outbox.ErrBadVector

	// ErrDerivedVector reports a non-empty vector (or ClearVector) written to
	// a field tagged `vec:"…;from=…"`: the indexer derives that vector from
	// the text, so the application never sets it. The write is not
	// executed.
	ErrDerivedVector = errors.New("gormplugin: the vector is derived from text by the indexer (from=) and cannot be written")

	// ErrSpecChanged reports that a model's tags no longer match the spec
	// stored in the registry by an earlier Migrate. The message says what
	// changed; record the new spec with UpdateSpec, then rebuild the sidecars
	// with the indexer (indexer.Rebuild, or `indexer rebuild --table T`).
	ErrSpecChanged = errors.New("gormplugin: sidecar spec changed")

	// ErrUnsupportedWrite reports a write whose vectors the plugin cannot
	// place exactly (creating from []map with vectors and without keys). It
	// is refused rather than left unindexed.
	ErrUnsupportedWrite = errors.New("gormplugin: unsupported write to an indexed table")

	// ErrPluginNotInstalled reports a Migrate or UpdateSpec call on a
	// *gorm.DB that has not installed the capture plugin: the sidecars would
	// be created but no later write would be recorded, so they would silently
	// stay empty. Install it first with db.Use(gormplugin.New()).
	ErrPluginNotInstalled = errors.New("gormplugin: capture plugin not installed on this *gorm.DB: call db.Use(gormplugin.New()) before Migrate, or writes are not captured")
)
