package reliab

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// HistoryDDL installs triggers that record, in the database itself, every
// advance of the main checkpoint together with the lease row (holder and
// fencing token) at that moment, and every change of lease holder or token.
// Since an apply transaction fences (re-checks and extends the lease) and
// advances the checkpoint in the same transaction, rel_applies says which
// holder committed each batch, whatever process it ran in.
var HistoryDDL = []string{
	`CREATE TABLE IF NOT EXISTS rel_applies (id INTEGER PRIMARY KEY, position INTEGER, holder TEXT, token INTEGER)`,
	`CREATE TABLE IF NOT EXISTS rel_leases (id INTEGER PRIMARY KEY, holder TEXT, token INTEGER)`,
	`CREATE TRIGGER IF NOT EXISTS rel_cp_ins AFTER INSERT ON oi_checkpoint WHEN new.name = 'main' BEGIN
		INSERT INTO rel_applies (position, holder, token) SELECT new.position, holder, token FROM oi_lease WHERE name = 'main';
	END`,
	`CREATE TRIGGER IF NOT EXISTS rel_cp_upd AFTER UPDATE ON oi_checkpoint WHEN new.name = 'main' AND new.position != old.position BEGIN
		INSERT INTO rel_applies (position, holder, token) SELECT new.position, holder, token FROM oi_lease WHERE name = 'main';
	END`,
	`CREATE TRIGGER IF NOT EXISTS rel_lease_ins AFTER INSERT ON oi_lease WHEN new.name = 'main' BEGIN
		INSERT INTO rel_leases (holder, token) VALUES (new.holder, new.token);
	END`,
	`CREATE TRIGGER IF NOT EXISTS rel_lease_upd AFTER UPDATE ON oi_lease WHEN new.name = 'main' AND (new.holder != old.holder OR new.token != old.token) BEGIN
		INSERT INTO rel_leases (holder, token) VALUES (new.holder, new.token);
	END`,
}

// InstallHistory runs HistoryDDL (the outbox tables must exist).
func InstallHistory(t testing.TB, db *sql.DB) {
	t.Helper()
	for _, q := range HistoryDDL {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
}

// Apply is one recorded checkpoint advance.
type Apply struct {
	Position int64
	Holder   string
	Token    int64
}

// History returns the recorded checkpoint advances in commit order and the
// lease changes (holder, token) in order.
func History(t testing.TB, db *sql.DB) (applies []Apply, leases []Apply) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT position, holder, token FROM rel_applies ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var a Apply
		require.NoError(t, rows.Scan(&a.Position, &a.Holder, &a.Token))
		applies = append(applies, a)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	rows, err = db.QueryContext(ctx, `SELECT holder, token FROM rel_leases ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var a Apply
		require.NoError(t, rows.Scan(&a.Holder, &a.Token))
		leases = append(leases, a)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	return applies, leases
}

// CheckSingleApplier asserts what the lease promises, from the history:
// fencing tokens only grow, each token belongs to one holder, and the
// checkpoint never moves backwards. It returns the number of batches each
// holder committed.
func CheckSingleApplier(t testing.TB, db *sql.DB) map[string]int {
	t.Helper()
	applies, leases := History(t, db)
	owner := map[int64]string{}
	var last int64
	for i, l := range leases {
		require.GreaterOrEqual(t, l.Token, last, "lease change %d: token went backwards", i)
		if h, ok := owner[l.Token]; ok {
			require.Equal(t, h, l.Holder, "token %d given to two holders", l.Token)
		}
		owner[l.Token] = l.Holder
		last = l.Token
	}
	byHolder := map[string]int{}
	var pos, tok int64
	for i, a := range applies {
		require.GreaterOrEqual(t, a.Position, pos, "apply %d: checkpoint went backwards", i)
		require.GreaterOrEqual(t, a.Token, tok, "apply %d: batch committed under an older token than an earlier one", i)
		require.Equal(t, owner[a.Token], a.Holder, "apply %d: batch committed by %s under token %d", i, a.Holder, a.Token)
		pos, tok = a.Position, a.Token
		byHolder[a.Holder]++
	}
	return byHolder
}

// Percentiles returns the p50, p99 and maximum of xs (which it sorts).
func Percentiles[T ~int64](xs []T) (p50, p99, maxv T) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	slices.Sort(xs)
	at := func(p float64) T { return xs[min(len(xs)-1, int(p*float64(len(xs))))] }
	return at(0.50), at(0.99), xs[len(xs)-1]
}

// Describe formats a holder -> batches map for the test log.
func Describe(m map[string]int) string { return fmt.Sprint(m) }
