package indexer

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Status is a consistent snapshot of the log, the checkpoint and the
// sidecars.
type Status struct {
	Head             int64         // id of the newest event ever appended
	Applied          int64         // the checkpoint: id of the last applied event
	Pending          int64         // events not applied yet
	DeadLetters      int64         // events parked in oi_deadletters
	Retained         int64         // applied events kept for rebuilds
	OldestPendingAge time.Duration // age of the oldest pending event (0 if none)
	EmbedQueued      int64         // keys waiting for an embedding of their text (derived vectors, from=)
	Lease            LeaseStatus
	Tables           []TableStatus // one per registered table, and per table that has events but no registry entry
}

// LeaseStatus describes the lease row.
type LeaseStatus struct {
	Name      string
	Holder    string // "" if nobody ever took it
	Token     int64
	ExpiresAt time.Time
	Live      bool // not expired
	Mine      bool // held by this indexer
}

// TableStatus describes one source table.
type TableStatus struct {
	Table       string
	SourceRows  int64 // -1 if the source table is missing
	Pending     int64
	Retained    int64
	DeadLetters int64
	EmbedQueued int64 // keys waiting for an embedding (from=)
	Sidecars    []SidecarStatus
	Error       string // a problem with the registry entry or the tables, "" if none
	// Rebuild describes the online rebuild of the table in progress, nil
	// when there is none.
	Rebuild *RebuildStatus
}

// SidecarStatus describes one sidecar table.
type SidecarStatus struct {
	Name   string // the sidecar's name in the registry (the tag's table)
	Live   string // the table that holds it now: Name, or its generation after an online rebuild (outbox.GenName)
	Kind   string // "vec0" or "fts5"
	Exists bool
	Rows   int64 // entries (vectors, or indexed documents)
}

// RebuildStatus is the progress of an online rebuild (see Rebuild).
type RebuildStatus struct {
	Phase     string    // outbox.PhaseSide, PhaseMove, PhaseCatchUp (side file) or PhaseScan, PhaseCopy, PhaseMerge (main file), then PhaseRequeue (derived vectors) and PhaseDrop
	Done      int64     // source rows copied into the new generation (in PhaseRequeue: queued for embedding)
	Total     int64     // source rows to copy (counted when the rebuild started)
	StartedAt time.Time // when the rebuild started (it may have been resumed since)
	UpdatedAt time.Time // when its last step committed
	// Rate is the rows copied per second since the rebuild started (in
	// PhaseRequeue: rows queued per second since the swap), and ETA the
	// time left to copy (queue) the rest at that rate (0 when unknown or
	// done).
	Rate     float64
	ETA      time.Duration
	Building []string // the tables of the new generation
}

// StatusOption is a per-call knob of Status.
type StatusOption func(*statusOptions)

type statusOptions struct {
	skipCounts bool
}

// WithoutCounts makes Status read only what grows with the pending part of
// the log, not with the data: it leaves out the counts that scan whole
// tables (Retained, TableStatus.SourceRows, TableStatus.Retained and
// SidecarStatus.Rows stay zero) but still reports missing tables in
// TableStatus.Error. It is meant for frequent polling, such as a metrics
// scrape: a full Status reads the whole retained log, every source table
// and every sidecar.
func WithoutCounts() StatusOption {
	return func(o *statusOptions) { o.skipCounts = true }
}

// Status returns a snapshot, read in one read transaction.
func (ix *Indexer) Status(ctx context.Context, opts ...StatusOption) (Status, error) {
	var st Status
	if err := ix.checkOpen(); err != nil {
		return st, err
	}
	var o statusOptions
	for _, opt := range opts {
		opt(&o)
	}
	err := ix.retry(ctx, func(ctx context.Context) error {
		tx, err := ix.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		st, err = ix.status(ctx, tx, o)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("indexer: status: %w", err)
	}
	return st, nil
}

// registryName returns the name the registry gives a sidecar (its tag's
// table), whatever its live generation.
func registryName(s outbox.Sink) string {
	switch t := s.(type) {
	case *vecsink.Table:
		return t.VecSpec().Table
	case *ftssink.Table:
		return t.Spec().FTS.Table
	}
	return s.Name()
}

func (ix *Indexer) status(ctx context.Context, tx *sql.Tx, o statusOptions) (Status, error) {
	var st Status
	var err error
	now := ix.cfg.now()
	if st.Head, err = outbox.Head(ctx, tx); err != nil {
		return st, err
	}
	if st.Applied, err = outbox.Checkpoint(ctx, tx, outbox.MainCheckpoint); err != nil {
		return st, err
	}
	l, ok, err := outbox.ReadLease(ctx, tx, ix.cfg.leaseName)
	if err != nil {
		return st, err
	}
	st.Lease = LeaseStatus{Name: ix.cfg.leaseName}
	if ok {
		token, held := ix.leaseToken()
		st.Lease = LeaseStatus{Name: l.Name, Holder: l.Holder, Token: l.Token, ExpiresAt: l.ExpiresAt,
			Live: l.ExpiresAt.After(now), Mine: held && l.Holder == ix.cfg.holder && l.Token == token && l.ExpiresAt.After(now)}
	}
	byName := map[string]*TableStatus{}
	get := func(n string) *TableStatus {
		if t := byName[n]; t != nil {
			return t
		}
		t := &TableStatus{Table: n}
		byName[n] = t
		return t
	}
	// Pending events of a table are those above both the checkpoint and
	// the table's last rebuild. Without counts only the log above the
	// checkpoint is read (a range of ids), so retained stays 0.
	query := `SELECT e.tbl,
		sum(e.id > max(?1, coalesce(c.position, 0))),
		sum(e.id <= max(?1, coalesce(c.position, 0))),
		min(CASE WHEN e.id > max(?1, coalesce(c.position, 0)) THEN e.at END)
		FROM oi_events e LEFT JOIN oi_checkpoint c ON c.name = ?2 || e.tbl GROUP BY e.tbl`
	if o.skipCounts {
		query = `SELECT e.tbl, count(*), 0, min(e.at)
		FROM oi_events e LEFT JOIN oi_checkpoint c ON c.name = ?2 || e.tbl
		WHERE e.id > ?1 AND e.id > coalesce(c.position, 0) GROUP BY e.tbl`
	}
	rows, err := tx.QueryContext(ctx, query, st.Applied, outbox.RebuiltPrefix)
	if err != nil {
		return st, fmt.Errorf("count events: %w", err)
	}
	var oldest int64
	for rows.Next() {
		var n string
		var pending, retained int64
		var at sql.NullInt64
		if err := rows.Scan(&n, &pending, &retained, &at); err != nil {
			rows.Close()
			return st, fmt.Errorf("count events: %w", err)
		}
		t := get(n)
		t.Pending, t.Retained = pending, retained
		st.Pending += pending
		st.Retained += retained
		if at.Valid && (oldest == 0 || at.Int64 < oldest) {
			oldest = at.Int64
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return st, fmt.Errorf("count events: %w", err)
	}
	if oldest != 0 {
		st.OldestPendingAge = max(now.Sub(time.Unix(0, oldest)), 0)
	}
	rows, err = tx.QueryContext(ctx, `SELECT tbl, count(*) FROM oi_deadletters GROUP BY tbl`)
	if err != nil {
		return st, fmt.Errorf("count dead letters: %w", err)
	}
	for rows.Next() {
		var n string
		var c int64
		if err := rows.Scan(&n, &c); err != nil {
			rows.Close()
			return st, fmt.Errorf("count dead letters: %w", err)
		}
		get(n).DeadLetters = c
		st.DeadLetters += c
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return st, fmt.Errorf("count dead letters: %w", err)
	}
	queued, err := outbox.EmbedQueued(ctx, tx)
	if err != nil {
		return st, err
	}
	for n, c := range queued {
		get(n).EmbedQueued = c
		st.EmbedQueued += c
	}
	var reg registry
	tables, err := reg.load(ctx, tx)
	if err != nil {
		return st, err
	}
	rebuilds, err := outbox.Rebuilds(ctx, tx)
	if err != nil {
		return st, err
	}
	for _, r := range rebuilds {
		rs := &RebuildStatus{Phase: r.Phase, Done: r.Done, Total: r.Total, StartedAt: r.StartedAt, UpdatedAt: r.UpdatedAt}
		if !r.Swapped() {
			rs.Building = strings.Split(rebuildLabel(r), ",")
		}
		since := r.StartedAt
		if r.Phase == outbox.PhaseRequeue {
			// Done counts again from the swap, where the requeue began.
			since = r.SwappedAt
		}
		if el := now.Sub(since).Seconds(); el > 0 && r.Done > 0 {
			rs.Rate = float64(r.Done) / el
			if left := r.Total - r.Done; left > 0 && (r.Phase == outbox.PhaseCopy || r.Phase == outbox.PhaseSide || r.Phase == outbox.PhaseRequeue) {
				rs.ETA = time.Duration(float64(left) / rs.Rate * float64(time.Second))
			}
		}
		get(r.Table).Rebuild = rs
	}
	for n := range tables {
		get(n)
	}
	for n, ts := range byName {
		t := tables[n]
		switch {
		case t == nil:
			ts.Error = fmt.Sprintf("%v: %s", outbox.ErrNotRegistered, n)
			continue
		case t.err != nil:
			ts.Error = t.err.Error()
			continue
		}
		ok, err := sqlutil.TableExists(ctx, tx, n)
		switch {
		case err != nil:
			return st, err
		case !ok:
			ts.SourceRows = -1
			ts.Error = fmt.Sprintf("source table %s does not exist", n)
		case !o.skipCounts:
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+outbox.Quote(n)).Scan(&ts.SourceRows); err != nil {
				return st, fmt.Errorf("count %s: %w", n, err)
			}
		}
		for _, s := range t.sinks {
			sc := SidecarStatus{Name: registryName(s), Live: s.Name(), Kind: "fts5"}
			if _, isVec := s.(*vecsink.Table); isVec {
				sc.Kind = "vec0"
			}
			if sc.Exists, err = s.Exists(ctx, tx); err != nil {
				return st, err
			}
			switch {
			case !sc.Exists:
				if ts.Error == "" {
					ts.Error = fmt.Sprintf("sidecar %s does not exist; rebuild the table", s.Name())
				}
			case !o.skipCounts:
				if sc.Rows, err = s.Count(ctx, tx); err != nil {
					return st, err
				}
			}
			ts.Sidecars = append(ts.Sidecars, sc)
		}
	}
	for _, ts := range byName {
		st.Tables = append(st.Tables, *ts)
	}
	slices.SortFunc(st.Tables, func(a, b TableStatus) int {
		switch {
		case a.Table < b.Table:
			return -1
		case a.Table > b.Table:
			return 1
		}
		return 0
	})
	return st, nil
}
