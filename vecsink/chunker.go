package vecsink

import (
	"fmt"
	"unicode"
)

// Chunker splits a text longer than an embedding model accepts into
// overlapping chunks, each embedded on its own, so that no text is ever
// silently truncated. It implements the `chunk=N;overlap=M` semantics:
//
//   - N and M count characters, that is Unicode code points (runes), not
//     model tokens: tokenizers differ between models and the indexer does not
//     know the model's, while characters are exact and cheap. For English
//     prose a token is about 4 characters, so chunk=1500 stays well within a
//     512-token model.
//   - Every chunk has at most N runes. Chunks follow each other: the first
//     starts at 0, the last ends at the end of the text, and each begins at
//     most M runes before its predecessor ends, never after it (nothing is
//     left out).
//   - Splits prefer word boundaries: a chunk that is not the last ends just
//     before a word (after the whitespace that precedes it) if one lies in
//     its second half (and past the overlap); else it is cut at N runes,
//     which never splits a rune but may split a word (text without spaces,
//     such as Chinese). The next chunk starts at the first word start among
//     the previous chunk's last M runes, so the overlap is at most M runes,
//     or exactly M runes from the cut when there is no word start there.
//   - A text of at most N runes is one chunk; an empty text has none.
//
// Spans are byte offsets into the text (text[c.Start:c.End] == c.Text), on
// rune boundaries. The zero Chunker is not usable; use [NewChunker].
type Chunker struct {
	size, overlap int
}

// Chunk is one piece of a text.
type Chunk struct {
	// Text is text[Start:End].
	Text string
	// Start and End are the byte offsets of the chunk in the text, End
	// excluded.
	Start, End int
}

// NewChunker returns a chunker of chunks of at most size runes that overlap
// by at most overlap runes. It requires size >= 1 and 0 <= overlap < size,
// and names the bad value otherwise (the error wraps [ErrInvalidOption]).
func NewChunker(size, overlap int) (Chunker, error) {
	if size < 1 {
		return Chunker{}, fmt.Errorf("vecsink: chunk=%d: must be at least 1: %w", size, ErrInvalidOption)
	}
	if overlap < 0 || overlap >= size {
		return Chunker{}, fmt.Errorf("vecsink: overlap=%d: must be at least 0 and less than chunk=%d: %w", overlap, size, ErrInvalidOption)
	}
	return Chunker{size: size, overlap: overlap}, nil
}

// Size returns the most runes per chunk.
func (c Chunker) Size() int { return c.size }

// Overlap returns the most runes two consecutive chunks share.
func (c Chunker) Overlap() int { return c.overlap }

// Split returns the chunks of text. Invalid UTF-8 bytes count as one rune
// each. It panics on a zero Chunker.
func (c Chunker) Split(text string) []Chunk {
	if c.size < 1 {
		panic("vecsink: Chunker used without NewChunker")
	}
	if text == "" {
		return nil
	}
	// offs[k] is the byte offset of rune k; offs[n] == len(text).
	offs := make([]int, 0, len(text)+1)
	space := make([]bool, 0, len(text))
	for i, r := range text {
		offs = append(offs, i)
		space = append(space, unicode.IsSpace(r))
	}
	n := len(offs)
	offs = append(offs, len(text))
	wordStart := func(q int) bool { return !space[q] && (q == 0 || space[q-1]) }

	var out []Chunk
	for start := 0; ; {
		end := start + c.size
		if end >= n {
			out = append(out, Chunk{Text: text[offs[start]:], Start: offs[start], End: len(text)})
			return out
		}
		for p, lo := end, start+max(c.overlap+1, c.size/2); p >= lo; p-- {
			if wordStart(p) {
				end = p
				break
			}
		}
		out = append(out, Chunk{Text: text[offs[start]:offs[end]], Start: offs[start], End: offs[end]})
		next := end - c.overlap
		for q := next; q < end; q++ {
			if wordStart(q) {
				next = q
				break
			}
		}
		start = next
	}
}
