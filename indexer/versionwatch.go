package indexer

import (
	"context"
	"database/sql"
)

// versionWatch reads PRAGMA data_version on a connection it holds: the
// counter is per connection (it moves when another connection commits), so
// the same connection must answer every read. The connection is taken on
// the first read and taken again after a failed one. A pool capped below
// minWatchPool connections (SetMaxOpenConns) is not watched: holding one of
// its few connections could leave none for the transactions the watch is
// meant to schedule; read then reports ok false, and callers act as if
// something changed.
type versionWatch struct {
	db   *sql.DB
	conn *sql.Conn
}

// minWatchPool is the smallest connection cap under which a versionWatch
// holds a connection of the pool.
const minWatchPool = 4

// watchable reports whether db's pool may lend a connection to a watch.
func watchable(db *sql.DB) bool {
	m := db.Stats().MaxOpenConnections
	return m == 0 || m >= minWatchPool
}

// read returns the data version; ok is false when the pool is not watched.
func (w *versionWatch) read(ctx context.Context) (v int64, ok bool, err error) {
	if w.conn == nil {
		if !watchable(w.db) {
			return 0, false, nil
		}
		if w.conn, err = w.db.Conn(ctx); err != nil {
			return 0, false, err
		}
	}
	if err := w.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		w.close()
		return 0, false, err
	}
	return v, true, nil
}

// close gives the connection back.
func (w *versionWatch) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}
