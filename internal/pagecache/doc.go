// Package pagecache tells how much of a file the operating system holds in
// its page cache: reading a resident page costs a memory copy, reading any
// other one a trip to the disk. The indexer asks it before it reads the
// rows a drop step is about to delete (indexer's prefetchDrop): that read
// exists to take cold disk reads out of the write lock, and costs CPU for
// nothing when the file is already in memory.
//
// It is a foundation: it imports none of the product packages.
package pagecache

import "errors"

// ErrUnsupported reports that this platform cannot tell (no mincore).
var ErrUnsupported = errors.New("pagecache: residency is not known on this platform")

// Resident returns the fraction (0 to 1) of the bytes of the files at
// paths that are in the page cache, the files weighted by their sizes. A
// path that does not exist counts as empty; when all are empty the fraction
// is 1 (there is nothing to read). On platforms without mincore it returns
// ErrUnsupported.
func Resident(paths ...string) (float64, error) {
	var in, total int64
	for _, p := range paths {
		i, n, err := resident(p)
		if err != nil {
			return 0, err
		}
		in, total = in+i, total+n
	}
	if total == 0 {
		return 1, nil
	}
	return float64(in) / float64(total), nil
}
