package outbox

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrSchemaVersion reports a database written by a newer, incompatible build.
	ErrSchemaVersion = errors.New("outbox: unsupported schema version")
	// ErrNotRegistered reports a source table that has no registry entry
	// (the model was never migrated with gormplugin.Migrate, or was dropped).
	ErrNotRegistered = errors.New("outbox: table not registered")
	// ErrBadVector reports a vector of the wrong length, or with NaN or Inf.
	ErrBadVector = errors.New("outbox: invalid vector")
	// ErrBadSpec reports a registry spec that is malformed or inconsistent.
	ErrBadSpec = errors.New("outbox: invalid spec")
	// ErrBadEvent reports an event whose columns cannot be decoded.
	ErrBadEvent = errors.New("outbox: malformed event")
)
