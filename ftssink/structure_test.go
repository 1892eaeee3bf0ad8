package ftssink_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
)

// structureTable creates a live FTS5 sidecar in mode (no source table: the
// test writes the index directly) and returns it.
func structureTable(t testing.TB, sqlDB *sql.DB, name, mode string) *ftssink.Table {
	t.Helper()
	spec := &outbox.Spec{Version: outbox.SpecVersion, Source: name, Key: "id", KeyType: outbox.KeyInteger,
		FTS: &outbox.FTSSpec{Table: name + "_fts", Mode: mode, Tokenize: "unicode61",
			Columns: []outbox.FTSCol{{Name: "title", Source: "title"}, {Name: "body", Source: "body"}}}}
	require.NoError(t, ftssink.Create(context.Background(), sqlDB, spec))
	ft, err := ftssink.NewTable(spec)
	require.NoError(t, err)
	return ft
}

// insertDocs writes docs from..to into the FTS5 table, one transaction
// (one segment) each.
func insertDocs(t testing.TB, sqlDB *sql.DB, ft *ftssink.Table, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		_, err := sqlDB.Exec(fmt.Sprintf(`INSERT INTO %s (rowid, title, body) VALUES (?, ?, ?)`, ft.Name()), i, fmt.Sprintf("title %d", i), "body common")
		require.NoError(t, err)
	}
}

// A live sidecar does not merge by itself: every write leaves a segment on
// level 0, which Structure counts; Merge brings the levels down until no
// level holds 'usermerge' (4) segments; a level of 64 segments is merged
// by FTS5 itself (the backstop).
func TestStructure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sqlDB, err := testdb.New(t).DB()
	require.NoError(t, err)
	for _, mode := range []string{outbox.ModeContentless, outbox.ModeInTable} {
		ft := structureTable(t, sqlDB, "st_"+mode, mode)
		s, err := ft.Structure(ctx, sqlDB)
		require.NoError(t, err)
		require.Zero(t, s.Fullest(), mode)
		require.False(t, s.Mergeable(), mode)

		insertDocs(t, sqlDB, ft, 1, 30)
		s, err = ft.Structure(ctx, sqlDB)
		require.NoError(t, err)
		require.Len(t, s.Levels, 1, mode)
		require.Equal(t, 30, s.Levels[0].Segments, mode)
		require.GreaterOrEqual(t, s.Levels[0].Pages, 30, "a segment has a leaf page at least")
		lvl, pages, ok := s.NextMerge()
		require.True(t, ok, mode)
		require.Equal(t, 0, lvl, mode)
		require.Equal(t, s.Levels[0].Pages, pages, mode)
		require.True(t, s.Mergeable(), mode)

		// Merge in small steps.
		mergeDown(t, sqlDB, ft, 2)
		s, err = ft.Structure(ctx, sqlDB)
		require.NoError(t, err)
		require.False(t, s.Mergeable(), "%s: %+v", mode, s.Levels)
		require.Less(t, s.Fullest(), 4, mode)
		total := 0
		for _, l := range s.Levels {
			total += l.Segments
		}
		require.Less(t, total, 30, mode)

		// The backstop: FTS5's crisis merge at 64 segments on a level.
		insertDocs(t, sqlDB, ft, 31, 31+70)
		s, err = ft.Structure(ctx, sqlDB)
		require.NoError(t, err)
		require.Less(t, s.Fullest(), 64, "%s: %+v", mode, s.Levels)
		require.GreaterOrEqual(t, s.Fullest(), 4, "%s: %+v", mode, s.Levels)

		_, err = sqlDB.Exec(fmt.Sprintf(`INSERT INTO %[1]s (%[1]s) VALUES ('integrity-check')`, ft.Name()))
		require.NoError(t, err, mode)
		var n int
		require.NoError(t, sqlDB.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %[1]s WHERE %[1]s MATCH 'common'`, ft.Name())).Scan(&n))
		require.Equal(t, 101, n, mode)
	}
}

func TestParseStructureErrors(t *testing.T) {
	t.Parallel()
	for name, b := range map[string][]byte{
		"empty":             nil,
		"short cookie":      {0, 0, 1},
		"no header":         {0, 0, 0, 1},
		"truncated level":   {0, 0, 0, 1, 1, 1, 0, 0},
		"too many levels":   {0, 0, 0, 1, 0x90, 0x00, 0, 0},
		"merging > segs":    {0, 0, 0, 1, 1, 1, 0, 2, 1, 1, 1, 1},
		"header disagrees":  {0, 0, 0, 1, 1, 2, 0, 0, 1, 1, 1, 1},
		"truncated segment": {0, 0, 0, 1, 1, 1, 0, 0, 1, 1},
	} {
		_, err := ftssink.ParseStructure(b)
		require.ErrorIs(t, err, ftssink.ErrStructure, name)
	}
	// Level 0: segments 5 (pages 1-1, being merged) and 6 (pages 2-4);
	// level 1: segment 9 (pages 3-3).
	s, err := ftssink.ParseStructure([]byte{0, 0, 0, 1, 2, 3, 7, 1, 2, 5, 1, 1, 6, 2, 4, 0, 1, 9, 3, 3})
	require.NoError(t, err)
	require.Equal(t, []ftssink.Level{{Segments: 2, Merging: 1, Pages: 4, MergingPages: 1}, {Segments: 1, Pages: 1}}, s.Levels)
}

// NextMerge picks the level FTS5's 'merge' works on: a merge in progress
// unless a lower level holds more segments, else the fullest level (the
// lowest on a tie) from 'usermerge' (4) segments, else the level with the
// most tombstones from 10% of its entries.
func TestNextMerge(t *testing.T) {
	t.Parallel()
	type want struct{ level, pages int }
	for name, c := range map[string]struct {
		levels []ftssink.Level
		want   *want
	}{
		"empty":                  {nil, nil},
		"below usermerge":        {[]ftssink.Level{{Segments: 3, Pages: 3}, {Segments: 1, Pages: 100}}, nil},
		"fullest":                {[]ftssink.Level{{Segments: 4, Pages: 4}, {Segments: 5, Pages: 500}}, &want{1, 500}},
		"tie goes to the lowest": {[]ftssink.Level{{Segments: 5, Pages: 5}, {Segments: 5, Pages: 500}}, &want{0, 5}},
		"merge in progress":      {[]ftssink.Level{{Segments: 2, Pages: 2}, {Segments: 4, Merging: 4, Pages: 300, MergingPages: 300}}, &want{1, 300}},
		"lower level fuller than the merge": {
			[]ftssink.Level{{Segments: 6, Pages: 6}, {Segments: 5, Merging: 4, Pages: 300, MergingPages: 200}}, &want{0, 6}},
		"merge in progress, partly consumed": {
			[]ftssink.Level{{Segments: 5, Merging: 4, Pages: 90, MergingPages: 40}}, &want{0, 40}},
		"tombstones":     {[]ftssink.Level{{Segments: 1, Pages: 7, Entries: 100, Tombstones: 5}, {Segments: 2, Pages: 70, Entries: 1000, Tombstones: 200}}, &want{1, 70}},
		"few tombstones": {[]ftssink.Level{{Segments: 1, Pages: 7, Entries: 100, Tombstones: 9}}, nil},
	} {
		lvl, pages, ok := ftssink.Structure{Levels: c.levels}.NextMerge()
		if c.want == nil {
			require.False(t, ok, name)
			continue
		}
		require.True(t, ok, name)
		require.Equal(t, *c.want, want{lvl, pages}, name)
	}
}

// FuzzParseStructure: any input is parsed or rejected with ErrStructure,
// never a panic, and what parses is consistent. The seeds are records
// FTS5 wrote.
func FuzzParseStructure(f *testing.F) {
	ctx := context.Background()
	sqlDB, err := testdb.New(f).DB()
	if err != nil {
		f.Fatal(err)
	}
	for _, mode := range []string{outbox.ModeContentless, outbox.ModeInTable} {
		ft := structureTable(f, sqlDB, "fz_"+mode, mode)
		for _, upto := range []int{0, 5, 40} {
			if upto > 0 {
				insertDocs(f, sqlDB, ft, upto-4, upto)
			}
			if upto == 40 {
				if _, err := ft.Merge(ctx, sqlDB, 3); err != nil {
					f.Fatal(err)
				}
			}
			var b []byte
			if err := sqlDB.QueryRow(`SELECT block FROM ` + ft.Name() + `_data WHERE id = 10`).Scan(&b); err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ftssink.ParseStructure(b)
		if err != nil {
			require.ErrorIs(t, err, ftssink.ErrStructure)
			return
		}
		total := 0
		for _, l := range s.Levels {
			require.GreaterOrEqual(t, l.Segments, l.Merging)
			require.GreaterOrEqual(t, l.Merging, 0)
			require.GreaterOrEqual(t, l.Pages, l.MergingPages)
			require.GreaterOrEqual(t, l.MergingPages, 0)
			total += l.Segments
		}
		require.LessOrEqual(t, total, 2000)
		if len(s.Levels)+3 > 64 {
			return
		}
		lifted, err := ftssink.LiftStructure(b, 3)
		require.NoError(t, err)
		ls, err := ftssink.ParseStructure(lifted)
		require.NoError(t, err)
		require.Len(t, ls.Levels, len(s.Levels)+3)
		require.Equal(t, make([]ftssink.Level, 3), ls.Levels[:3])
		for i, l := range s.Levels {
			require.Equal(t, l, ls.Levels[i+3], "the same levels, three up")
		}
	})
}

func TestLiftStructure(t *testing.T) {
	t.Parallel()
	b := []byte{0, 0, 0, 1, 2, 3, 7, 1, 2, 5, 1, 1, 6, 2, 4, 0, 1, 9, 3, 3}
	lifted, err := ftssink.LiftStructure(b, 2)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 0, 1, 4, 3, 7, 0, 0, 0, 0, 1, 2, 5, 1, 1, 6, 2, 4, 0, 1, 9, 3, 3}, lifted)
	_, err = ftssink.LiftStructure(b, 63)
	require.ErrorIs(t, err, ftssink.ErrStructure, "more than 64 levels")
	_, err = ftssink.LiftStructure(b[:7], 1)
	require.ErrorIs(t, err, ftssink.ErrStructure)
}

// mergeDown merges ft, pages at a time, until 'merge' finds no work.
func mergeDown(t *testing.T, sqlDB *sql.DB, ft *ftssink.Table, pages int) {
	t.Helper()
	for steps := 0; ; steps++ {
		require.Less(t, steps, 1000, ft.Name())
		wrote, err := ft.Merge(context.Background(), sqlDB, pages)
		require.NoError(t, err)
		if wrote == 0 {
			return
		}
	}
}

// A lifted index keeps its segments, in their order, on higher levels
// (level 12 up): FTS5 reads it as before (integrity-check, MATCH), a
// document written before the lift is deleted and replaced correctly
// after it, and what is written after it is merged on the levels below.
func TestLiftLevels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sqlDB, err := testdb.New(t).DB()
	require.NoError(t, err)
	for _, mode := range []string{outbox.ModeContentless, outbox.ModeInTable} {
		ft := structureTable(t, sqlDB, "lift_"+mode, mode)
		require.NoError(t, ft.LiftLevels(ctx, sqlDB, 12), "an empty index: nothing to do")
		insertDocs(t, sqlDB, ft, 1, 40)
		mergeDown(t, sqlDB, ft, 50)
		before, err := ft.Structure(ctx, sqlDB)
		require.NoError(t, err)
		lowest := slices.IndexFunc(before.Levels, func(l ftssink.Level) bool { return l.Segments > 0 })
		require.GreaterOrEqual(t, lowest, 0)

		require.NoError(t, ft.LiftLevels(ctx, sqlDB, 12))
		after, err := ft.Structure(ctx, sqlDB)
		require.NoError(t, err)
		require.Equal(t, before.Levels[lowest:], after.Levels[12:], mode)
		require.Equal(t, make([]ftssink.Level, 12), after.Levels[:12], mode)
		require.NoError(t, ft.LiftLevels(ctx, sqlDB, 12), mode)
		again, err := ft.Structure(ctx, sqlDB)
		require.NoError(t, err)
		require.Equal(t, after, again, "already lifted: unchanged")

		// Replace document 7 (written before the lift), delete 8, add more.
		_, err = sqlDB.Exec(fmt.Sprintf(`DELETE FROM %s WHERE rowid IN (7, 8)`, ft.Name()))
		require.NoError(t, err, mode)
		_, err = sqlDB.Exec(fmt.Sprintf(`INSERT INTO %s (rowid, title, body) VALUES (7, 'title 7', 'body replaced')`, ft.Name()))
		require.NoError(t, err, mode)
		insertDocs(t, sqlDB, ft, 41, 80)
		mergeDown(t, sqlDB, ft, 50)
		final, err := ft.Structure(ctx, sqlDB)
		require.NoError(t, err)
		require.False(t, final.Mergeable(), mode)
		_, err = sqlDB.Exec(fmt.Sprintf(`INSERT INTO %[1]s (%[1]s) VALUES ('integrity-check')`, ft.Name()))
		require.NoError(t, err, mode)
		count := func(q string) int {
			var n int
			require.NoError(t, sqlDB.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %[1]s WHERE %[1]s MATCH ?`, ft.Name()), q).Scan(&n))
			return n
		}
		require.Equal(t, 78, count("common"), mode)
		require.Equal(t, 1, count("replaced"), mode)
		require.Zero(t, count(`"title 8"`)+count(`"8"`), mode)
	}
}
