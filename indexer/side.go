package indexer

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// Online rebuild through a side file: for a table with integer keys in a
// database file, the next generation is built in a database file of its
// own (outbox.SideFile), not in the main file, so that tokenizing and
// merging take no lock the application waits on.
//
//   - side: key ranges of the source are copied into the side file's
//     tables, each in one transaction of the side file (the main file
//     attached as oi_src) that reads the main file at one snapshot; the
//     range is recorded with the log head of that snapshot. Only a one-row
//     progress update per range takes the main file's write lock.
//   - move: the rows of the finished tables' shadow tables (FTS5's
//     segments, vec0's chunks) are copied into the main file, where the
//     new generation is created empty first, in short transactions (the
//     side file attached as oi_side). A copied row is written with INSERT
//     OR REPLACE: a step repeated after a crash writes the same rows.
//   - catchup: the new generation holds every key as it was at its range's
//     snapshot. The events logged after that snapshot are applied to it in
//     short transactions, from the log head at the start of the rebuild
//     (compaction keeps every event above it until the swap; see
//     compactTx); the transaction that reaches the head, having applied
//     the log to the live generation too, swaps.
//
// A rebuild interrupted in any phase continues from its last committed
// step: the side file records its ranges and its position, oi_rebuild the
// move's position and the catch-up's. DiscardRebuild (a DropTable, a new
// spec) removes the side file with the rest.

// Schema names of the two files on each other's connections.
const (
	srcSchema  = "oi_src"  // the main file, on the side file's connection
	sideSchema = "oi_side" // the side file, on a main connection during the move
)

// sideStepBudget is how long a side transaction aims to take: it holds no
// lock another writer waits on (only a read snapshot of the main file), so
// it is longer than a step in the main file.
const sideStepBudget = 250 * time.Millisecond

// sideFile is the open side file of one online rebuild.
type sideFile struct {
	path string
	db   *sql.DB
	conn *sql.Conn // its one connection, with the main file attached
	// ranges are the copied key ranges, loaded for the catch-up.
	ranges []sideRange
}

// sideRange is the key range (previous hi, hi] copied in one transaction
// that read the main file at log head head.
type sideRange struct{ hi, head int64 }

func (sf *sideFile) close() {
	if sf.conn != nil {
		sf.conn.Close()
	}
	sf.db.Close()
}

// sideEligible reports whether the online rebuild of spec goes through a
// side file: integer keys (text keys get their FTS5 rowids from oi_keymap,
// which only the main file's write lock may extend) in a database file.
func sideEligible(mainFile string, spec *outbox.Spec) bool {
	return mainFile != "" && spec.KeyType == outbox.KeyInteger
}

// mainFile returns the main database file's path, read once.
func (ix *Indexer) mainFile(ctx context.Context) (string, error) {
	if ix.online.mainFileRead {
		return ix.online.mainFile, nil
	}
	f, err := outbox.MainFile(ctx, ix.db)
	if err != nil {
		return "", err
	}
	ix.online.mainFile, ix.online.mainFileRead = f, true
	return f, nil
}

// closeSide closes the open side file, if any.
func (ix *Indexer) closeSide() {
	if ix.online.side != nil {
		ix.online.side.close()
		ix.online.side = nil
	}
}

// openSide returns the side file of r, opened (and created, with the new
// generation's tables, empty) on first use. A side file of another spec
// (left by a rebuild that was discarded while it stepped) is replaced.
func (ix *Indexer) openSide(ctx context.Context, r *outbox.RebuildState, mt *table) (*sideFile, error) {
	mainFile, err := ix.mainFile(ctx)
	if err != nil {
		return nil, err
	}
	path := outbox.SideFile(mainFile, r.Table, r.StartedAt)
	if sf := ix.online.side; sf != nil && sf.path == path {
		return sf, nil
	}
	ix.closeSide()
	sf, err := openSideFile(ctx, path, mainFile)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(r.Spec)
	if err != nil {
		sf.close()
		return nil, err
	}
	if err := sf.init(ctx, string(raw), mt); err != nil {
		sf.close()
		return nil, fmt.Errorf("rebuild %s: side file %s: %w", r.Table, path, err)
	}
	ix.online.side = sf
	return sf, nil
}

func openSideFile(ctx context.Context, path, mainFile string) (*sideFile, error) {
	dsn, err := engine.DSNWith(path, engine.Params{BusyTimeoutMS: engine.DefaultBusyTimeoutMS, JournalMode: "wal", TxLock: "deferred"})
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(engine.DriverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open side file %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	sf := &sideFile{path: path, db: db}
	if sf.conn, err = db.Conn(ctx); err != nil {
		sf.close()
		return nil, fmt.Errorf("open side file %s: %w", path, err)
	}
	if _, err := sf.conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+srcSchema, mainFile); err != nil {
		sf.close()
		return nil, fmt.Errorf("open side file %s: attach %s: %w", path, mainFile, err)
	}
	return sf, nil
}

// init creates the side file's tables unless it has them for spec raw;
// one that holds another spec is emptied first.
func (sf *sideFile) init(ctx context.Context, raw string, mt *table) error {
	tx, err := sf.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS main.oi_side (k TEXT PRIMARY KEY, v) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS main.oi_side_ranges (hi INTEGER PRIMARY KEY, head INTEGER NOT NULL)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	var have string
	err = tx.QueryRowContext(ctx, `SELECT v FROM main.oi_side WHERE k = 'spec'`).Scan(&have)
	switch {
	case err == nil && have == raw:
		return tx.Commit()
	case err == nil:
		// Another spec: start it afresh.
		names, err := sideTables(ctx, tx, "main")
		if err != nil {
			return err
		}
		for _, n := range names {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS main.`+outbox.Quote(n)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM main.oi_side; DELETE FROM main.oi_side_ranges`); err != nil {
			return err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	for _, s := range mt.sinks {
		if err := s.(outbox.Copier).Create(ctx, tx); err != nil {
			return err
		}
		// No merges while the side file is filled (a step merges only
		// when segments pile up: sideCopy), one segment per step, large
		// leaves; the merge stage merges the index into one segment and
		// sets the live page size for the writers of the main file, and
		// the move the live settings.
		if m, ok := s.(outbox.Merger); ok {
			if err := m.Build(ctx, tx); err != nil {
				return err
			}
		}
	}
	if len(mt.vecs) > 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE main.`+outbox.Quote(outbox.VecStatesTable(mt.spec.Source))+` (field TEXT NOT NULL, key NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (field, key)) WITHOUT ROWID`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO main.oi_side (k, v) VALUES ('spec', ?), ('after', NULL), ('scanned', 0), ('done', 0), ('total', 0), ('finished', 0)`, raw); err != nil {
		return err
	}
	return tx.Commit()
}

// sideTables returns the user tables of schema (of a side file, whose
// tables are its own).
func sideTables(ctx context.Context, db outbox.DB, schema string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM `+schema+`.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' AND name NOT IN ('oi_side', 'oi_side_ranges') ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// sideState is the progress a side file records.
type sideState struct {
	after   any // last key copied (int64), nil before the first range
	scanned int64
	done    int64
	total   int64 // source rows counted by the first step (0 before)
	stage   int64 // sideCopying, sideMerging or sideReady
}

// Stages of a side file: its key ranges are being copied; its FTS5 index
// is being merged (off the main file's lock, so that the first writes
// after the move do not meet a level of segments due for merging); it is
// ready to move.
const (
	sideCopying = iota
	sideMerging
	sideReady
)

// sideMergePages is the FTS5 merge work of one side step. The merge
// stage merges the new index into one segment, which the move then lifts
// (liftLevels): a lifted index of several segments of similar sizes is
// pulled back down, each merge of the live levels pulling the next one
// (FTS5 moves a segment down when a newer one is at least as large), and
// at 1M rows merges of up to 215,251 pages followed the swap.
const sideMergePages = 2000

// sideMaxSegments is how many segments an FTS5 index of a side file may
// hold before a step merges instead of copying (sideMergeDown): each step
// writes one segment and nothing merges them until the merge stage (see
// ftssink's Build), and FTS5 refuses writes at 2,000. At 2,000 rows a
// step, a million rows make about 500. (cfg.sideMaxSegments, which tests
// lower.)
const sideMaxSegments = 1000

// sideMergeDown does sideMergePages of merge work toward one segment on
// each FTS5 index of mt's side tables that holds cfg.sideMaxSegments
// segments or more, in tx, and reports whether it did any (the step then
// copies nothing). A structure record it cannot read counts as few
// segments: FTS5's crisis merge is the backstop.
func (ix *Indexer) sideMergeDown(ctx context.Context, tx *sql.Tx, mt *table) (bool, error) {
	merged := false
	for _, m := range mergers(mt) {
		st, err := m.Structure(ctx, tx)
		if errors.Is(err, ftssink.ErrStructure) {
			continue
		}
		if err != nil {
			return false, err
		}
		n := 0
		for _, l := range st.Levels {
			n += l.Segments
		}
		if n < ix.cfg.sideMaxSegments {
			continue
		}
		wrote, err := m.Merge(ctx, tx, -sideMergePages)
		if err != nil {
			return false, err
		}
		ix.log.Debug("rebuild: side merge", "sidecar", m.Name(), "segments", n, "wrote", wrote)
		merged = merged || wrote > 0
	}
	return merged, nil
}

func readSideState(ctx context.Context, tx *sql.Tx) (sideState, error) {
	var st sideState
	rows, err := tx.QueryContext(ctx, `SELECT k, v FROM main.oi_side WHERE k IN ('after', 'scanned', 'done', 'total', 'finished')`)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v any
		if err := rows.Scan(&k, &v); err != nil {
			return st, err
		}
		n, _ := v.(int64)
		switch k {
		case "after":
			st.after = v
		case "scanned":
			st.scanned = n
		case "done":
			st.done = n
		case "total":
			st.total = n
		case "finished":
			st.stage = n
		}
	}
	return st, rows.Err()
}

// errRetryStep reports a step that failed for a reason it has taken care
// of (a key it leaves out from now on): the next step goes on.
var errRetryStep = errors.New("indexer: rebuild step to retry")

// errSideGone reports that the rebuild a side step worked for was
// discarded or replaced meanwhile.
var errSideGone = errors.New("indexer: the rebuild was discarded")

// sideStep copies the next key range of r into its side file, then
// records the progress in oi_rebuild (moving r to PhaseMove after the
// last range).
func (ix *Indexer) sideStep(ctx context.Context, r *outbox.RebuildState, t, mt *table) error {
	sf, err := ix.openSide(ctx, r, mt)
	if err != nil {
		return err
	}
	var st sideState
	err = ix.retry(ctx, func(ctx context.Context) error {
		var err error
		st, err = ix.sideCopy(ctx, sf, t, mt)
		return err
	})
	if err != nil {
		ix.closeSide()
		return err
	}
	err = ix.retry(ctx, func(ctx context.Context) error {
		return ix.inTx(ctx, func(tx *sql.Tx) error {
			cur, ok, err := outbox.LoadRebuild(ctx, tx, r.Table)
			if err != nil {
				return err
			}
			if !ok || cur.Phase != outbox.PhaseSide || !cur.StartedAt.Equal(r.StartedAt) {
				return errSideGone
			}
			cur.Done, cur.Total, cur.Driver = st.done, max(st.total, st.done), ix.cfg.holder
			if st.stage == sideReady {
				cur.Phase, cur.Total, cur.After = outbox.PhaseMove, st.done, nil
			}
			*r = *cur
			return outbox.SaveRebuild(ctx, tx, cur)
		})
	})
	if errors.Is(err, errSideGone) {
		ix.closeSide()
		mainFile, _ := ix.mainFile(ctx)
		return outbox.RemoveSideFiles(mainFile, r.Table, "")
	}
	return err
}

// sideCopy copies one key range into the side file in one of its
// transactions, unless the copy is finished, and returns its progress.
func (ix *Indexer) sideCopy(ctx context.Context, sf *sideFile, t, mt *table) (sideState, error) {
	tx, err := sf.conn.BeginTx(ctx, nil)
	if err != nil {
		return sideState{}, err
	}
	defer tx.Rollback()
	// The side file's write lock first (another indexer may step the
	// rebuild too, after its driver went silent): waited for on the busy
	// timeout, and taken before this transaction reads anything.
	if _, err := tx.ExecContext(ctx, `UPDATE main.oi_side SET v = v WHERE k = 'spec'`); err != nil {
		return sideState{}, err
	}
	st, err := readSideState(ctx, tx)
	if err != nil || st.stage == sideReady {
		return st, err
	}
	if st.stage == sideMerging {
		more := false
		for _, s := range mt.sinks {
			if m, ok := s.(outbox.Merger); ok {
				wrote, err := m.Merge(ctx, tx, -sideMergePages)
				if err != nil {
					return st, err
				}
				more = more || wrote > 0
			}
		}
		if !more {
			for _, s := range mt.sinks {
				if m, ok := s.(outbox.Merger); ok {
					if err := m.Fill(ctx, tx, false); err != nil {
						return st, err
					}
				}
			}
			st.stage = sideReady
			if _, err := tx.ExecContext(ctx, `UPDATE main.oi_side SET v = ? WHERE k = 'finished'`, st.stage); err != nil {
				return st, err
			}
		}
		return st, tx.Commit()
	}
	// The log head of the snapshot this transaction reads the main file
	// at (its first read of the main file starts it).
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT max(
		coalesce((SELECT seq FROM `+srcSchema+`.sqlite_sequence WHERE name = 'oi_events'), 0),
		coalesce((SELECT max(id) FROM `+srcSchema+`.oi_events), 0))`).Scan(&head); err != nil {
		return st, fmt.Errorf("rebuild %s: side: log head: %w", t.spec.Source, err)
	}
	if st.after == nil && st.total == 0 {
		// The row count, for progress (an estimate: rows come and go).
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+srcSchema+`.`+outbox.Quote(t.spec.Source)).Scan(&st.total); err != nil {
			return st, fmt.Errorf("rebuild %s: count rows: %w", t.spec.Source, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE main.oi_side SET v = ? WHERE k = 'total'`, st.total); err != nil {
			return st, err
		}
	}
	states := outbox.VecStatesTable(t.spec.Source)
	if len(mt.vecs) > 0 && head > st.scanned {
		// The log is folded into the vector states in id ranges sized to
		// the step (the first fold reads the whole retained log: seconds
		// at a million rows, and a driver silent that long is taken
		// over); a range is copied only once the states reach the head.
		if ix.online.sideScan <= 0 {
			ix.online.sideScan = 50000
		}
		hi := min(st.scanned+ix.online.sideScan, head)
		t0 := time.Now()
		if err := ix.foldStates(ctx, tx, mt, states, st.scanned, hi); err != nil {
			return st, err
		}
		ix.online.sideScan = tune(ix.online.sideScan, time.Since(t0), sideStepBudget, 1000, 1<<24)
		if hi < head {
			st.scanned = hi
			if _, err := tx.ExecContext(ctx, `UPDATE main.oi_side SET v = ? WHERE k = 'scanned'`, st.scanned); err != nil {
				return st, err
			}
			return st, tx.Commit()
		}
	}
	if merged, err := ix.sideMergeDown(ctx, tx, mt); err != nil || merged {
		if err != nil {
			return st, err
		}
		return st, tx.Commit()
	}
	if ix.online.sideChunk <= 0 {
		ix.online.sideChunk = cmp.Or(ix.cfg.sideChunk, 1000)
	}
	t0 := time.Now()
	hi, rows, last, err := nextRange(ctx, tx, t.spec, st.after, ix.online.sideChunk)
	if err != nil {
		return st, err
	}
	kr := outbox.KeyRange{VecStates: states}
	kr.Cond, kr.Args = rangeCond(t.spec, st.after, hi, last)
	for _, s := range mt.sinks {
		if _, err := s.(outbox.Copier).CopyRange(ctx, tx, kr); err != nil {
			return st, err
		}
	}
	if ix.cfg.sideChunk <= 0 {
		ix.online.sideChunk = int(tune(int64(ix.online.sideChunk), time.Since(t0), sideStepBudget, 64, 1<<20))
	}
	rangeHi := int64(math.MaxInt64)
	if !last {
		rangeHi = hi.(int64)
		st.after = hi
	}
	st.scanned, st.done = head, st.done+rows
	if last {
		st.stage = sideMerging
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO main.oi_side_ranges (hi, head) VALUES (?, ?)`, rangeHi, head); err != nil {
		return st, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE main.oi_side SET v = CASE k WHEN 'after' THEN ? WHEN 'scanned' THEN ? WHEN 'done' THEN ? WHEN 'finished' THEN ? ELSE v END`,
		st.after, st.scanned, st.done, st.stage); err != nil {
		return st, err
	}
	return st, tx.Commit()
}

// withSideAttached runs fn in a write transaction of the main file on a
// connection that has r's side file attached as oi_side (detached again
// before the connection goes back to the pool).
func (ix *Indexer) withSideAttached(ctx context.Context, r *outbox.RebuildState, fn func(tx *sql.Tx) error) error {
	mainFile, err := ix.mainFile(ctx)
	if err != nil {
		return err
	}
	// The side file's own connection goes first: the move only reads it.
	ix.closeSide()
	conn, err := ix.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+sideSchema, outbox.SideFile(mainFile, r.Table, r.StartedAt)); err != nil {
		return fmt.Errorf("rebuild %s: attach the side file: %w", r.Table, err)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE `+sideSchema); err != nil {
			// Not back to the pool with the side file attached.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if err := inTxOn(ctx, conn, fn); err != nil {
		return err
	}
	ix.online.committed = time.Now()
	// Copy the frames the step wrote into the database file now, on this
	// connection: left in the WAL, they would be copied by whichever
	// commit crosses the auto-checkpoint threshold next, often the
	// application's.
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		ix.log.Debug("rebuild: checkpoint", "err", err)
	}
	ix.online.checkpoint = time.Since(ix.online.committed)
	return nil
}

// fromSideStep does one step of the phases that follow the side file's,
// in tx: the move of the side file's tables into the main file, then the
// catch-up, whose last step swaps. It fails with errSideGone when the
// side file is missing or incomplete.
func (ix *Indexer) fromSideStep(ctx context.Context, tx *sql.Tx, r *outbox.RebuildState, t, mt *table) error {
	if r.Phase == outbox.PhaseMove {
		t1 := time.Now()
		moved, err := ix.moveStep(ctx, tx, r, mt)
		ix.online.copyTime = time.Since(t1)
		if err == nil && moved {
			// Its FTS5 segments go up out of the way of the live
			// merges (Indexer.liftLevels), and the side file's FTS5 settings,
			// which came with it (FTS5's defaults: automatic merges),
			// become the live ones, before the catch-up writes to it
			// in the main file.
			err = ix.liftLevels(ctx, tx, mt)
			if err == nil {
				err = liveSettings(ctx, tx, mt)
			}
			r.Phase, r.After = outbox.PhaseCatchUp, nil
		}
		return err
	}
	tc := time.Now()
	if err := ix.catchUpTx(ctx, tx); err != nil {
		return err
	}
	ix.online.catchUpTime = time.Since(tc)
	// The new generation has the live settings since the move (FTS5
	// merges nothing by itself) and nobody merges it before the swap,
	// while each catch-up step writes a segment to it: left alone, its
	// level 0 reached the crisis merge (64 segments), which merged the
	// level inside one step (1M rows: catch-up steps of 135-167 ms). A
	// step that finds a level to merge merges it in a slice sized to the
	// step, and catches up in the next one.
	tm := time.Now()
	merged, err := ix.mergeOnly(ctx, tx, mt, false)
	ix.online.mergeTime = time.Since(tm)
	if err != nil || merged {
		return err
	}
	t1 := time.Now()
	caught, err := ix.catchUpStep(ctx, tx, r, mt)
	ix.online.copyTime = time.Since(t1)
	if err != nil || !caught {
		return err
	}
	return ix.swap(ctx, tx, r, t, mt)
}

// minMoveWork is the least copying a move step does: below it, the
// step's attach, commit and checkpoint cost more than its copy (with a
// 1 ms step, a move took thousands of steps). tuneWork sizes the copying
// to the step's budget above it.
const minMoveWork = 2 * time.Millisecond

// moveCursor is the position of the move: the index of the table being
// copied (in sideTables order) and the key of the last row copied of it.
type moveCursor struct {
	Table int      `json:"t"`
	Key   []string `json:"k,omitempty"` // encoded with encodeKeyValue
}

// moveStep copies the next rows of the side file's tables into the main
// file (tx has the side file attached) and reports whether the move is
// done. The first step creates the new generation in the main file.
func (ix *Indexer) moveStep(ctx context.Context, tx *sql.Tx, r *outbox.RebuildState, mt *table) (bool, error) {
	var names []string
	has, err := schemaHas(ctx, tx, sideSchema, "oi_side")
	if err != nil {
		return false, err
	}
	if !has {
		return false, fmt.Errorf("rebuild %s: %w: the side file is missing or empty", r.Table, errSideGone)
	}
	all, err := sideTables(ctx, tx, sideSchema)
	if err != nil {
		return false, err
	}
	// The sidecars' own tables (the virtual tables' shadow tables), not
	// the virtual tables nor the vector states.
	for _, n := range all {
		for _, s := range mt.sinks {
			if strings.HasPrefix(n, s.Name()+"_") {
				names = append(names, n)
				break
			}
		}
	}
	var cur moveCursor
	if r.After == nil {
		for _, s := range mt.sinks {
			if err := dropMain(ctx, tx, s.Name()); err != nil {
				return false, err
			}
			if err := s.(outbox.Copier).Create(ctx, tx); err != nil {
				return false, err
			}
		}
		for _, n := range names {
			if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+outbox.Quote(n)); err != nil {
				return false, fmt.Errorf("rebuild %s: move: %w", r.Table, err)
			}
		}
	} else if s, ok := r.After.(string); !ok || json.Unmarshal([]byte(s), &cur) != nil {
		return false, fmt.Errorf("rebuild %s: move: bad position %v", r.Table, r.After)
	}
	if ix.online.moveRows <= 0 {
		ix.online.moveRows = 16
	}
	if ix.online.moveWork <= 0 {
		ix.online.moveWork = max(ix.workBudget(), minMoveWork)
	}
	budget := ix.online.moveWork
	ix.online.moved = true
	t0 := time.Now()
	for cur.Table < len(names) && time.Since(t0) < budget {
		if cur.Key == nil {
			// A new table: its rows may be far larger than the last
			// one's (a vec0 chunk is 1,000 vectors).
			ix.online.moveRows = 1
		}
		ts := time.Now()
		n, more, err := copyRows(ctx, tx, names[cur.Table], &cur.Key, ix.online.moveRows)
		if err != nil {
			return false, fmt.Errorf("rebuild %s: move %s: %w", r.Table, names[cur.Table], err)
		}
		if n > 0 {
			ix.online.moveRows = int(tune(int64(ix.online.moveRows), time.Since(ts), budget/2, 1, 1<<16))
		}
		if !more {
			cur = moveCursor{Table: cur.Table + 1}
		}
	}
	if cur.Table >= len(names) {
		return true, nil
	}
	b, _ := json.Marshal(cur)
	r.After = string(b)
	return false, nil
}

// schemaHas reports whether schema has a table named name.
func schemaHas(ctx context.Context, db outbox.DB, schema, name string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+schema+`.sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n)
	return n > 0, err
}

// dropMain drops the table name of the main file if it exists (the name
// qualified: the side file attached has a table of the same name).
func dropMain(ctx context.Context, tx *sql.Tx, name string) error {
	has, err := schemaHas(ctx, tx, "main", name)
	if err != nil || !has {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE main.`+outbox.Quote(name)); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	return nil
}

// copyRows copies up to n rows of table from the side file into the main
// file after the key *last (nil: from the first), in key order (the rowid,
// or the primary key of a WITHOUT ROWID table), moves *last to the last
// row copied, and reports how many it copied and whether rows are left.
func copyRows(ctx context.Context, tx *sql.Tx, table string, last *[]string, n int) (int, bool, error) {
	key, cols, err := copyColumns(ctx, tx, table)
	if err != nil {
		return 0, false, err
	}
	keyList := strings.Join(key, ", ")
	tuple := "(" + keyList + ")"
	marks := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(key)), ", ") + ")"
	cond, args := "1", []any(nil)
	if *last != nil {
		vals, err := decodeKeyValues(*last)
		if err != nil {
			return 0, false, err
		}
		cond, args = tuple+" > "+marks, vals
	}
	src := sideSchema + "." + outbox.Quote(table)
	rows, err := tx.QueryContext(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT ?`, keyList, src, cond, keyList), append(args, n)...)
	if err != nil {
		return 0, false, err
	}
	var hi []any
	count := 0
	for rows.Next() {
		hi = make([]any, len(key))
		ptrs := make([]any, len(key))
		for i := range hi {
			ptrs[i] = &hi[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return 0, false, err
		}
		count++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if count == 0 {
		return 0, false, nil
	}
	upper := cond + " AND " + tuple + " <= " + marks
	if cond == "1" {
		upper = tuple + " <= " + marks
	}
	colList := strings.Join(cols, ", ")
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT OR REPLACE INTO main.%s (%s) SELECT %s FROM %s WHERE %s`, outbox.Quote(table), colList, colList, src, upper), append(args, hi...)...); err != nil {
		return 0, false, err
	}
	enc := make([]string, len(hi))
	for i, v := range hi {
		if enc[i], err = encodeKeyValue(v); err != nil {
			return 0, false, err
		}
	}
	*last = enc
	return count, count == n, nil
}

// copyColumns returns the key columns of a side file's table to copy it
// in order by (its rowid, or the primary key of a WITHOUT ROWID table),
// and the columns to copy (the rowid included, which vec0 addresses its
// vector chunks by even where a column named "rowid" hides it).
func copyColumns(ctx context.Context, tx *sql.Tx, table string) (key, cols []string, err error) {
	var wr int
	if err := tx.QueryRowContext(ctx, `SELECT wr FROM pragma_table_list WHERE schema = ? AND name = ?`, sideSchema, table).Scan(&wr); err != nil {
		return nil, nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, type, pk FROM pragma_table_info(?, ?) ORDER BY cid`, table, sideSchema)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type col struct {
		name, typ string
		pk        int
	}
	var all []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.name, &c.typ, &c.pk); err != nil {
			return nil, nil, err
		}
		all = append(all, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	pks := 0
	for _, c := range all {
		if c.pk > 0 {
			pks++
		}
	}
	if wr == 1 {
		slices.SortFunc(all, func(a, b col) int { return a.pk - b.pk })
		for _, c := range all {
			cols = append(cols, outbox.Quote(c.name))
			if c.pk > 0 {
				key = append(key, outbox.Quote(c.name))
			}
		}
		return key, cols, nil
	}
	key, cols = []string{"_rowid_"}, []string{"_rowid_"}
	for _, c := range all {
		if pks == 1 && c.pk == 1 && strings.EqualFold(c.typ, "INTEGER") {
			continue // the rowid itself
		}
		cols = append(cols, outbox.Quote(c.name))
	}
	return key, cols, nil
}

// encodeKeyValue encodes a key value read from SQLite for the move's
// position (JSON would not tell a blob from text): a type letter and the
// value.
func encodeKeyValue(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "n", nil
	case int64:
		return "i" + strconv.FormatInt(x, 10), nil
	case float64:
		return "r" + strconv.FormatFloat(x, 'g', -1, 64), nil
	case string:
		return "t" + x, nil
	case []byte:
		return "b" + hex.EncodeToString(x), nil
	}
	return "", fmt.Errorf("move position: unexpected %T", v)
}

func decodeKeyValues(enc []string) ([]any, error) {
	out := make([]any, len(enc))
	for i, e := range enc {
		if e == "" {
			return nil, fmt.Errorf("move position: empty value")
		}
		var err error
		switch body := e[1:]; e[0] {
		case 'n':
		case 'i':
			out[i], err = strconv.ParseInt(body, 10, 64)
		case 'r':
			out[i], err = strconv.ParseFloat(body, 64)
		case 't':
			out[i] = body
		case 'b':
			out[i], err = hex.DecodeString(body)
		default:
			err = fmt.Errorf("move position: bad value %q", e)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// loadRanges reads the copied key ranges of r from its side file.
func (ix *Indexer) loadRanges(ctx context.Context, r *outbox.RebuildState, mt *table) ([]sideRange, error) {
	sf, err := ix.openSide(ctx, r, mt)
	if err != nil {
		return nil, err
	}
	if sf.ranges != nil {
		return sf.ranges, nil
	}
	rows, err := sf.conn.QueryContext(ctx, `SELECT hi, head FROM main.oi_side_ranges ORDER BY hi`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sideRange
	for rows.Next() {
		var x sideRange
		if err := rows.Scan(&x.hi, &x.head); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 || out[len(out)-1].hi != math.MaxInt64 {
		return nil, fmt.Errorf("rebuild %s: %w: the side file's ranges are incomplete", r.Table, errSideGone)
	}
	sf.ranges = out
	return out, nil
}

// copiedAt returns the log head of the snapshot key k was copied at.
func copiedAt(ranges []sideRange, k int64) int64 {
	i, _ := slices.BinarySearchFunc(ranges, k, func(x sideRange, k int64) int {
		switch {
		case x.hi < k:
			return -1
		case x.hi > k:
			return 1
		}
		return 0
	})
	return ranges[min(i, len(ranges)-1)].head
}

// catchUpStep applies to the new generation the events it lacks, from the
// position r.Scanned on, within the step's budget, in tx (which has
// applied the log to the live generation: no event can appear meanwhile),
// and reports whether it reached the head.
func (ix *Indexer) catchUpStep(ctx context.Context, tx *sql.Tx, r *outbox.RebuildState, mt *table) (bool, error) {
	ranges, err := ix.loadRanges(ctx, r, mt)
	if err != nil {
		return false, err
	}
	head, err := outbox.Head(ctx, tx)
	if err != nil {
		return false, err
	}
	budget := ix.workBudget()
	t0 := time.Now()
	if ix.online.catchRows <= 0 {
		ix.online.catchRows = 64
	}
	for r.Scanned < head && time.Since(t0) < budget {
		tb0 := time.Now()
		n := min(ix.online.catchRows, ix.cfg.batchSize)
		raws, err := outbox.ReadRawEvents(ctx, tx, r.Scanned, n)
		if err != nil {
			return false, err
		}
		if len(raws) == 0 {
			r.Scanned = head
			break
		}
		tb := &tableBatch{name: r.Table, keys: map[any]*keyState{}}
		for _, raw := range raws {
			if raw.Table != r.Table || raw.ID > head {
				continue
			}
			e, err := raw.Decode()
			if err != nil {
				continue // the live generation parks it
			}
			k, ok := e.Key.(int64)
			if !ok || raw.ID <= copiedAt(ranges, k) || ix.online.skip[k] {
				continue
			}
			ks := tb.keyState(k)
			ks.ids = append(ks.ids, raw.ID)
			ks.events = append(ks.events, e)
		}
		applied := 0
		if len(tb.order) > 0 {
			keys := make([]*keyState, 0, len(tb.order))
			for _, k := range tb.order {
				keys = append(keys, tb.keys[k])
				applied += len(tb.keys[k].events)
			}
			// Keys applied while later events of theirs remain get key
			// floors of the new generation's own (see outbox.NextFloors).
			var floorAt int64
			if len(raws) == n && raws[len(raws)-1].ID < head {
				floorAt = head
			}
			if err := ix.applyTable(ctx, tx, mt, keys, outbox.ApplyOptions{KeepKeyMap: true}, outbox.NextFloors(r.Table), floorAt, nil); err != nil {
				var ue *unitError
				if errors.As(err, &ue) {
					if k, ok := ue.u.key.(int64); ok {
						// Its events fail in the live generation too,
						// which parks them: the dead letters, retried
						// after the swap, bring the key in.
						ix.log.Warn("rebuild: an event fails in the new generation; the key is left to its dead letters", "table", r.Table, "key", k, "err", err)
						if ix.online.skip == nil {
							ix.online.skip = map[int64]bool{}
						}
						ix.online.skip[k] = true
						return false, fmt.Errorf("%w: %w", errRetryStep, err)
					}
				}
				return false, err
			}
		}
		r.Scanned = min(raws[len(raws)-1].ID, head)
		if applied > 0 {
			ix.online.catchPer = time.Since(tb0) / time.Duration(applied)
		}
		ix.online.catchRows = batchEvents(ix.online.catchRows, ix.online.catchPer, budget/2, ix.cfg.batchSize)
	}
	return r.Scanned >= head, nil
}

// batchEvents returns how many log events the next batch reads (n the
// last, at most most), so that a batch whose events all have to be
// applied takes about target, at per (the time per event applied by the
// last batch that applied any; 0 while none did). It sizes the worker's
// batches (sizeBatches) and a catch-up step's. A catch-up batch whose
// events are skipped (their keys were copied after them) costs next to
// nothing and teaches nothing: sized on the time per event read instead,
// such batches grew the next one eightfold, and when that one's events
// all applied, the swap step held the write lock 140-250 ms at 100k rows.
func batchEvents(n int, per, target time.Duration, most int) int {
	if per <= 0 {
		return n
	}
	return int(min(max(int64(target/per), 16), 2*int64(n), int64(most)))
}
