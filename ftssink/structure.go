package ftssink

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/outboxindexer/outboxindexer/outbox"
)

// ErrStructure is returned (wrapped) for an FTS5 structure record that
// cannot be read: a format this package does not know, or a damaged one.
var ErrStructure = errors.New("ftssink: unreadable FTS5 structure record")

// Structure is what an FTS5 index's structure record says of its
// segments: the index is a list of levels, each a list of segments, and
// FTS5 merges the segments of a level into one on the next level.
type Structure struct {
	Levels []Level
}

// Level is one level of an FTS5 index.
type Level struct {
	// Segments is the number of segments on the level.
	Segments int
	// Merging is how many of them an incremental merge in progress is
	// combining (0: none).
	Merging int
	// Pages is the number of leaf pages of the level's segments; of a
	// segment an incremental merge is consuming, only what it has not
	// consumed yet.
	Pages int
	// MergingPages is the part of Pages in the segments being merged: what
	// the merge in progress still has to read.
	MergingPages int
	// Entries and Tombstones are the entries of the level's segments and
	// the deletes recorded against them (contentless_delete tables; both
	// 0 in records from before FTS5 3.45).
	Entries, Tombstones int64
}

// Fullest returns the number of segments on the level that holds the
// most: FTS5's 'merge' command with a positive page count works on a level
// once it holds 'usermerge' segments (4 by default), and a query reads
// every segment.
func (s Structure) Fullest() int {
	n := 0
	for _, l := range s.Levels {
		n = max(n, l.Segments)
	}
	return n
}

// Mergeable reports whether FTS5's 'merge' command with a positive page
// count (Table.Merge) has work: whether NextMerge finds a level.
func (s Structure) Mergeable() bool {
	_, _, ok := s.NextMerge()
	return ok
}

// UserMerge is FTS5's 'usermerge' setting, which this package leaves at
// its default: the 'merge' command with a positive page count (Merge)
// works on a level once it holds this many segments.
const UserMerge = 4

// deleteMerge is FTS5's 'deletemerge' default, which this package keeps:
// with no level holding 'usermerge' segments, 'merge' works on the level
// whose tombstones are at least this percentage of its entries.
const deleteMerge = 10

// NextMerge returns the level FTS5's 'merge' command with a positive page
// count (Table.Merge) would work on next, and how many leaf pages of input
// that merge has (what is left of it, for a merge in progress); ok is false
// when it has no work. It follows FTS5's choice: the first merge in
// progress, unless a level below it holds more segments than that merge
// combines; else the level holding the most segments (the lowest on a
// tie) once it holds 'usermerge'; else the level with the most tombstones
// once they are 'deletemerge' percent of its entries.
func (s Structure) NextMerge() (level, pages int, ok bool) {
	best, n := 0, 0
	for i, l := range s.Levels {
		if l.Merging > 0 {
			if l.Merging > n {
				return i, l.MergingPages, true
			}
			break
		}
		if l.Segments > n {
			best, n = i, l.Segments
		}
	}
	if n >= UserMerge {
		return best, s.Levels[best].Pages, true
	}
	best, pct := -1, int64(0)
	for i, l := range s.Levels {
		if l.Entries > 0 {
			if p := l.Tombstones * 100 / l.Entries; p >= deleteMerge && p > pct {
				best, pct = i, p
			}
		}
	}
	if best < 0 {
		return 0, 0, false
	}
	return best, s.Levels[best].Pages, true
}

// structureRowid is the rowid of the structure record in an FTS5 table's
// %_data table (FTS5_STRUCTURE_ROWID).
const structureRowid = 10

// structureV2 marks the structure records of FTS5 3.45 and later, whose
// segments carry five more fields (origins and tombstone counts).
var structureV2 = []byte{0xff, 0x00, 0x00, 0x01}

// maxSegments is FTS5's limit on the segments of an index
// (FTS5_MAX_SEGMENT), which also bounds its levels.
const maxSegments = 2000

// maxPages and maxEntries bound what a segment's page range and entry
// counts may add, so that a damaged record cannot overflow the sums.
const (
	maxPages   = 1 << 31
	maxEntries = 1<<48 - 1
)

// ParseStructure decodes an FTS5 structure record: a 4-byte cookie, the
// V2 marker if any, the numbers of levels and segments and the write
// counter, then per level the segments being merged and the segments, each
// with its id and page range (and, in V2, origins and tombstone counts).
// Integers are SQLite varints.
func ParseStructure(b []byte) (Structure, error) {
	if len(b) < 4 {
		return Structure{}, fmt.Errorf("%w: %d bytes", ErrStructure, len(b))
	}
	r := varintReader{b: b, i: 4}
	v2 := len(b) >= 8 && bytes.Equal(b[4:8], structureV2)
	if v2 {
		r.i = 8
	}
	nLevel, nSegment := r.next(), r.next()
	r.next() // write counter
	if r.err == nil && (nLevel > maxSegments || nSegment > maxSegments) {
		return Structure{}, fmt.Errorf("%w: %d levels, %d segments", ErrStructure, nLevel, nSegment)
	}
	var s Structure
	total := uint64(0)
	for l := uint64(0); r.err == nil && l < nLevel; l++ {
		merging, segs := r.next(), r.next()
		if r.err != nil {
			break
		}
		if merging > segs || segs > maxSegments {
			return Structure{}, fmt.Errorf("%w: level %d: %d segments, %d merging", ErrStructure, l, segs, merging)
		}
		lv := Level{Segments: int(segs), Merging: int(merging)}
		for i := range segs {
			r.next() // segment id
			first, last := r.next(), r.next()
			if v2 {
				r.next() // origins
				r.next()
				r.next() // tombstone pages
				lv.Tombstones += int64(r.next() & maxEntries)
				lv.Entries += int64(r.next() & maxEntries)
			}
			// A segment a merge has consumed whole has first page 0.
			pages := 0
			if first > 0 && last >= first && last-first < maxPages {
				pages = int(last - first + 1)
			}
			lv.Pages += pages
			if i < merging {
				lv.MergingPages += pages
			}
		}
		total += segs
		s.Levels = append(s.Levels, lv)
	}
	if r.err != nil {
		return Structure{}, r.err
	}
	if total != nSegment {
		return Structure{}, fmt.Errorf("%w: the levels hold %d segments, the header says %d", ErrStructure, total, nSegment)
	}
	return s, nil
}

// varintReader reads SQLite varints (big-endian, seven bits a byte, the
// ninth byte whole) from b, remembering the first error.
type varintReader struct {
	b   []byte
	i   int
	err error
}

func (r *varintReader) next() uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	for n := 0; n < 9; n++ {
		if r.i >= len(r.b) {
			r.err = fmt.Errorf("%w: truncated at byte %d", ErrStructure, r.i)
			return 0
		}
		c := r.b[r.i]
		r.i++
		if n == 8 {
			return v<<8 | uint64(c)
		}
		v = v<<7 | uint64(c&0x7f)
		if c < 0x80 {
			return v
		}
	}
	return v
}

// Structure reads the table's structure record: how many segments each
// level of its index holds. It is one row read, no write.
func (t *Table) Structure(ctx context.Context, db outbox.DB) (Structure, error) {
	var b []byte
	err := db.QueryRowContext(ctx, `SELECT block FROM `+outbox.Quote(t.Name()+"_data")+` WHERE id = ?`, structureRowid).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return Structure{}, nil
	}
	if err != nil {
		return Structure{}, fmt.Errorf("ftssink: %s: read structure: %w", t.Name(), err)
	}
	s, err := ParseStructure(b)
	if err != nil {
		return Structure{}, fmt.Errorf("ftssink: %s: %w", t.Name(), err)
	}
	return s, nil
}

// maxLevels is FTS5's limit on the levels of an index (FTS5_MAX_LEVEL).
const maxLevels = 64

// LiftStructure returns the structure record b with every level moved up
// shift levels, and shift empty levels below them: the same segments in
// the same order (a higher level holds older segments, which is how FTS5
// tells which of two entries of a document is current), on higher
// levels. It fails with ErrStructure when b cannot be read or the index
// would have more than FTS5's 64 levels.
func LiftStructure(b []byte, shift int) ([]byte, error) {
	s, err := ParseStructure(b)
	if err != nil {
		return nil, err
	}
	if shift < 0 || len(s.Levels)+shift > maxLevels {
		return nil, fmt.Errorf("%w: %d levels lifted by %d: FTS5 allows %d", ErrStructure, len(s.Levels), shift, maxLevels)
	}
	start := 4
	if len(b) >= 8 && bytes.Equal(b[4:8], structureV2) {
		start = 8
	}
	r := varintReader{b: b, i: start}
	r.next() // levels
	afterLevels := r.i
	r.next() // segments
	r.next() // write counter
	if r.err != nil {
		return nil, r.err
	}
	out := make([]byte, 0, len(b)+1+2*shift)
	out = append(out, b[:start]...)
	out = append(out, byte(len(s.Levels)+shift)) // at most 64: one byte
	out = append(out, b[afterLevels:r.i]...)
	for range shift {
		out = append(out, 0, 0) // no segment being merged, no segment
	}
	return append(out, b[r.i:]...), nil
}

// LiftLevels moves the segments of the table's index up so that the
// lowest level holding any is level (see LiftStructure), in one write of
// its structure record. FTS5's levels count merges, not sizes: a merge of
// a level's segments writes one on the next level, and a level is merged
// once it holds 'usermerge' (4) segments. An index just built in bulk has
// a few levels, with its large segments on the top ones, so the merges of
// a few hundred small writes after it reach them, and FTS5 then rewrites
// the whole index, in pieces that hold the write lock for as long as the
// list of documents of the most common term takes to merge. Lifted to
// level 12, they are reached only after 4^12 (16.7 million) writes of one
// segment each; the segments written after the lift fill the levels below
// as they would have in an index of their own, and those of the lifted
// segments that are no larger than what those merges write are moved down
// into them (FTS5's promotion). It does nothing to an empty index or one
// already that high. It bypasses FTS5, which caches the structure per
// connection and checks the cache against PRAGMA data_version, which a
// connection's own commits leave alone: a connection that read the index
// through FTS5 before the lift and lifts it itself would write the levels
// back as it cached them with its next write (the same segments: the
// index stays sound, only the lift is lost). Lift on a connection that
// has not read the index through FTS5, or discard the connection after.
func (t *Table) LiftLevels(ctx context.Context, db outbox.DB, level int) error {
	data := outbox.Quote(t.Name() + "_data")
	var b []byte
	err := db.QueryRowContext(ctx, `SELECT block FROM `+data+` WHERE id = ?`, structureRowid).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ftssink: %s: read structure: %w", t.Name(), err)
	}
	s, err := ParseStructure(b)
	if err != nil {
		return fmt.Errorf("ftssink: %s: %w", t.Name(), err)
	}
	lowest := -1
	for i, l := range s.Levels {
		if l.Segments > 0 {
			lowest = i
			break
		}
	}
	shift := min(level-lowest, maxLevels-len(s.Levels))
	if lowest < 0 || shift <= 0 {
		return nil
	}
	lifted, err := LiftStructure(b, shift)
	if err != nil {
		return fmt.Errorf("ftssink: %s: %w", t.Name(), err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE `+data+` SET block = ? WHERE id = ?`, lifted, structureRowid); err != nil {
		return fmt.Errorf("ftssink: %s: lift levels: %w", t.Name(), err)
	}
	return nil
}
