package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemoIsDeterministic(t *testing.T) {
	t.Parallel()
	r1 := run(t, nil, "demo")
	require.Equal(t, 0, r1.code, r1.stderr)
	r2 := run(t, nil, "demo")
	require.Equal(t, 0, r2.code, r2.stderr)
	require.Equal(t, r1.stdout, r2.stdout, "same output on every run")

	out := r1.stdout
	require.Contains(t, out, "Wrote 300 articles through gorm")
	require.Contains(t, out, "Indexer applied 600 change events and embedded 300 texts in 10 requests.")
	require.Contains(t, out, "saved another article unchanged: 1 text embedded again.")
	knn, fts, ok := strings.Cut(out, "Full-text search for")
	require.True(t, ok, out)
	require.Contains(t, knn, `Nearest neighbours of "volcano island"`)
	// Five ranked neighbours, nearest first.
	knnRow := regexp.MustCompile(`(?m)^  (\d)\. #(\d+) +(\d\.\d{4})  \S`)
	rows := knnRow.FindAllStringSubmatch(knn, -1)
	require.Len(t, rows, 5, knn)
	for i, row := range rows {
		require.Equal(t, string(rune('1'+i)), row[1])
		if i > 0 {
			require.LessOrEqual(t, rows[i-1][3], row[3], "distances ascend")
		}
	}
	// Five hits with highlighted titles or snippets around the matches.
	ftsRow := regexp.MustCompile(`(?m)^  (\d)\. #(\d+) +(-\d+\.\d\d)  (.*)\n {11}(.*)$`)
	hits := ftsRow.FindAllStringSubmatch(fts, -1)
	require.Len(t, hits, 5, fts)
	for _, h := range hits {
		require.Regexp(t, `\[(volcano|island)\]`, h[4]+h[5], "the match is marked")
	}
	// The temporary database is gone.
	require.Contains(t, r1.stderr, "demo database")
	m := regexp.MustCompile(`path=(\S+)`).FindStringSubmatch(r1.stderr)
	require.NotNil(t, m)
	_, err := os.Stat(m[1])
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestDemoKeepsDatabaseForOtherCommands(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "demo.db")
	r := run(t, nil, "demo", "--path", path, "--rows", "120", "--query", "river", "--k", "3")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Wrote 120 articles")
	require.Contains(t, r.stdout, "indexer status --db "+path)

	st := status(t, path)
	require.GreaterOrEqual(t, st.Head, int64(120))
	require.Equal(t, st.Head, st.Applied)
	require.EqualValues(t, 0, st.Pending)
	require.EqualValues(t, 0, st.DeadLetters)
	require.Len(t, st.Tables, 1)
	require.Equal(t, "articles", st.Tables[0].Table)
	require.EqualValues(t, 120, st.Tables[0].SourceRows)
	require.Empty(t, st.Tables[0].Error)
	require.EqualValues(t, 120, sidecarRows(t, st, "articles", "vec0"))
	require.EqualValues(t, 120, sidecarRows(t, st, "articles", "fts5"))

	// The human table says the same.
	h := run(t, nil, "status", "--db", path)
	require.Equal(t, 0, h.code, h.stderr)
	require.Contains(t, h.stdout, fmt.Sprintf("head %d  applied %d  pending 0  dead letters 0", st.Head, st.Head))
	require.Regexp(t, `(?m)^TABLE +ROWS +PENDING +RETAINED +DEAD +SIDECARS +PROBLEM$`, h.stdout)
	require.Regexp(t, `(?m)^articles +120 +0 +\d+ +0 +articles_vec \(vec0\) 120, articles_fts \(fts5\) 120 +-$`, h.stdout)

	// demo never touches an existing file.
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	r = run(t, nil, "demo", "--path", path)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "exists")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after)
}
