package gormplugin

// Option configures the plugin returned by New.
type Option func(*config)

type config struct {
	notify func()
}

// WithNotify registers fn to be called after a write statement of an
// indexed model that changed rows has finished (one that changed no indexed
// column, and so recorded no event, may notify too): after its own commit when gorm opened the transaction,
// right after the statement when it ran inside the caller's transaction (the
// events become visible at the caller's commit; an indexer that is woken early
// simply finds nothing new and polls again). It is meant to wake an in-process
// indexer and must not block: it runs in the writer's goroutine.
func WithNotify(fn func()) Option {
	return func(c *config) { c.notify = fn }
}
