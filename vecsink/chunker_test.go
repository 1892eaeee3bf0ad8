package vecsink_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/outboxindexer/outboxindexer/vecsink"
	"github.com/stretchr/testify/require"
)

// checkChunks asserts the documented invariants of Chunker.Split.
func checkChunks(t *testing.T, c vecsink.Chunker, text string, chunks []vecsink.Chunk) {
	t.Helper()
	if text == "" {
		require.Empty(t, chunks)
		return
	}
	require.NotEmpty(t, chunks)
	require.Equal(t, 0, chunks[0].Start, "first chunk starts the text")
	require.Equal(t, len(text), chunks[len(chunks)-1].End, "last chunk ends the text")
	runes := func(s string) int { return len([]rune(s)) } // invalid bytes count one each, like range
	for i, ch := range chunks {
		require.Less(t, ch.Start, ch.End, "chunk %d is empty", i)
		require.Equal(t, text[ch.Start:ch.End], ch.Text, "chunk %d text", i)
		require.LessOrEqual(t, runes(ch.Text), c.Size(), "chunk %d too long", i)
		if utf8.ValidString(text) {
			require.True(t, utf8.ValidString(ch.Text), "chunk %d split a rune", i)
		}
		if i == 0 {
			continue
		}
		prev := chunks[i-1]
		require.Greater(t, ch.Start, prev.Start, "chunk %d does not advance", i)
		require.Greater(t, ch.End, prev.End, "chunk %d does not advance", i)
		require.LessOrEqual(t, ch.Start, prev.End, "gap before chunk %d", i)
		require.LessOrEqual(t, runes(text[ch.Start:prev.End]), c.Overlap(), "chunk %d overlaps too much", i)
	}
}

func TestChunkerExact(t *testing.T) {
	t.Parallel()
	c, err := vecsink.NewChunker(10, 3)
	require.NoError(t, err)
	text := "the quick brown fox jumps over the lazy dog"
	got := c.Split(text)
	checkChunks(t, c, text, got)
	var texts []string
	for _, ch := range got {
		texts = append(texts, ch.Text)
	}
	// Chunks end before a word; the next starts at the first word start of
	// the last 3 runes, or 3 runes back when there is none.
	require.Equal(t, []string{"the quick ", "ck brown ", "wn fox ", "ox jumps ", "ps over ", "er the ", "he lazy ", "zy dog"}, texts)
	require.Equal(t, vecsink.Chunk{Text: "ck brown ", Start: 7, End: 16}, got[1])

	// Overlap 0 with words: chunks are consecutive and end on word boundaries.
	c0, err := vecsink.NewChunker(12, 0)
	require.NoError(t, err)
	texts = nil
	for _, ch := range c0.Split(text) {
		texts = append(texts, ch.Text)
	}
	require.Equal(t, []string{"the quick ", "brown fox ", "jumps over ", "the lazy dog"}, texts)
	require.Equal(t, text, strings.Join(texts, ""))

	// Multi-byte runes: sizes count runes, spans are bytes.
	cj, err := vecsink.NewChunker(3, 1)
	require.NoError(t, err)
	got = cj.Split("日本語のテキスト")
	checkChunks(t, cj, "日本語のテキスト", got)
	require.Equal(t, []vecsink.Chunk{
		{Text: "日本語", Start: 0, End: 9},
		{Text: "語のテ", Start: 6, End: 15},
		{Text: "テキス", Start: 12, End: 21},
		{Text: "スト", Start: 18, End: 24},
	}, got)

	require.Equal(t, []vecsink.Chunk{{Text: "short", Start: 0, End: 5}}, c.Split("short"))
	require.Nil(t, c.Split(""))
}

func TestNewChunkerErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size, overlap int
		msg           string
	}{
		{0, 0, "chunk=0"},
		{-1, 0, "chunk=-1"},
		{10, 10, "overlap=10"},
		{10, -1, "overlap=-1"},
	} {
		_, err := vecsink.NewChunker(tc.size, tc.overlap)
		require.ErrorIs(t, err, vecsink.ErrInvalidOption)
		require.ErrorContains(t, err, tc.msg)
	}
}

func FuzzChunker(f *testing.F) {
	f.Add("the quick brown fox jumps over the lazy dog", 10, 3)
	f.Add("日本語のテキスト with some words", 4, 2)
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaa", 7, 6)
	f.Add("a b c d e f g h", 1, 0)
	f.Add("\xff\xfe bad utf8 \xc3", 3, 1)
	f.Add("   lots   of   space   ", 5, 4)
	f.Fuzz(func(t *testing.T, text string, size, overlap int) {
		size = 1 + abs(size)%64
		overlap = abs(overlap) % size
		c, err := vecsink.NewChunker(size, overlap)
		require.NoError(t, err)
		checkChunks(t, c, text, c.Split(text))
	})
}

func abs(x int) int {
	if x < 0 {
		if x == -x { // math.MinInt
			return 0
		}
		return -x
	}
	return x
}
