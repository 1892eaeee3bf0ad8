package ftssink_test

import (
	"context"
	"database/sql"
	"fmt"
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
		require.Equal(t, []ftssink.Level{{Segments: 30}}, s.Levels, mode)
		require.True(t, s.Mergeable(), mode)

		// Merge in small steps.
		for steps := 0; ; steps++ {
			require.Less(t, steps, 1000, mode)
			wrote, err := ft.Merge(ctx, sqlDB, 2)
			require.NoError(t, err)
			if wrote == 0 {
				break
			}
		}
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
	s, err := ftssink.ParseStructure([]byte{0, 0, 0, 1, 2, 3, 7, 1, 2, 5, 1, 1, 6, 2, 2, 0, 1, 9, 3, 3})
	require.NoError(t, err)
	require.Equal(t, []ftssink.Level{{Segments: 2, Merging: 1}, {Segments: 1}}, s.Levels)
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
			total += l.Segments
		}
		require.LessOrEqual(t, total, 2000)
	})
}
