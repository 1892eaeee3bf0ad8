package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrLeaseLost reports that the caller no longer holds the lease it applied
// under: another holder took it over (the caller's lease expired, for example
// while its process was frozen). Nothing was written.
var ErrLeaseLost = errors.New("outbox: lease lost to another holder")

// Lease is a row of oi_lease: the single-applier lease. Token is the fencing
// token: it grows by one every time the lease changes hands, and every apply
// transaction re-checks (holder, token) before writing.
type Lease struct {
	Name      string
	Holder    string
	Token     int64
	ExpiresAt time.Time
}

// ReadLease returns the lease row called name; ok is false if there is none.
func ReadLease(ctx context.Context, db DB, name string) (l Lease, ok bool, err error) {
	var exp int64
	err = db.QueryRowContext(ctx, `SELECT holder, token, expires_at FROM oi_lease WHERE name = ?`, name).Scan(&l.Holder, &l.Token, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{Name: name}, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("outbox: read lease %s: %w", name, err)
	}
	l.Name = name
	l.ExpiresAt = time.Unix(0, exp)
	return l, true, nil
}

// AcquireLease takes or renews the lease called name for holder until
// now+ttl. token is the caller's current token (0 if it holds none). The
// lease is granted when nobody holds it, when the caller holds it with that
// token (a renewal, same token), or when the current holder's lease has
// expired (a takeover: the token grows by one). Otherwise it returns the
// current lease and false. Call it inside a write transaction.
func AcquireLease(ctx context.Context, db DB, name, holder string, token int64, ttl time.Duration, now time.Time) (Lease, bool, error) {
	cur, ok, err := ReadLease(ctx, db, name)
	if err != nil {
		return cur, false, err
	}
	exp := now.Add(ttl)
	switch {
	case !ok:
		cur = Lease{Name: name, Holder: holder, Token: 1, ExpiresAt: exp}
		if _, err := db.ExecContext(ctx, `INSERT INTO oi_lease (name, holder, token, expires_at) VALUES (?, ?, ?, ?)`, name, holder, cur.Token, exp.UnixNano()); err != nil {
			return cur, false, fmt.Errorf("outbox: take lease %s: %w", name, err)
		}
		return cur, true, nil
	case cur.Holder == holder && cur.Token == token:
		cur.ExpiresAt = exp
	case !cur.ExpiresAt.After(now):
		cur = Lease{Name: name, Holder: holder, Token: cur.Token + 1, ExpiresAt: exp}
	default:
		return cur, false, nil
	}
	if _, err := db.ExecContext(ctx, `UPDATE oi_lease SET holder = ?, token = ?, expires_at = ? WHERE name = ?`, holder, cur.Token, exp.UnixNano(), name); err != nil {
		return cur, false, fmt.Errorf("outbox: take lease %s: %w", name, err)
	}
	return cur, true, nil
}

// FenceLease checks, inside the caller's write transaction, that holder still
// holds the lease with token, and extends it to expires. It returns
// ErrLeaseLost if the lease changed hands; the caller must then roll back.
func FenceLease(ctx context.Context, tx DB, name, holder string, token int64, expires time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE oi_lease SET expires_at = ? WHERE name = ? AND holder = ? AND token = ?`, expires.UnixNano(), name, holder, token)
	if err != nil {
		return fmt.Errorf("outbox: check lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("outbox: check lease %s: %w", name, err)
	}
	if n != 1 {
		return fmt.Errorf("%w: %s (holder %s, token %d)", ErrLeaseLost, name, holder, token)
	}
	return nil
}

// ReleaseLease gives the lease up if holder still holds it with token, by
// expiring it (the row stays so that tokens keep growing).
func ReleaseLease(ctx context.Context, db DB, name, holder string, token int64) error {
	if _, err := db.ExecContext(ctx, `UPDATE oi_lease SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?`, name, holder, token); err != nil {
		return fmt.Errorf("outbox: release lease %s: %w", name, err)
	}
	return nil
}
