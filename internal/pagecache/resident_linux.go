//go:build linux

package pagecache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// window is how much of a file one mapping covers: the residency vector of
// a window is window/page bytes, whatever the file's size.
const window = 1 << 30

// resident returns how many bytes of the file at path are resident, and its
// size, mapping it one window at a time (a mapping reads nothing; mincore
// only looks at the cache).
func resident(path string) (in, size int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("pagecache: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("pagecache: %w", err)
	}
	size = st.Size()
	page := int64(os.Getpagesize())
	vec := make([]byte, (min(size, window)+page-1)/page)
	for off := int64(0); off < size; off += window {
		n := min(size-off, window)
		m, err := unix.Mmap(int(f.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return 0, 0, fmt.Errorf("pagecache: map %s: %w", path, err)
		}
		v := vec[:(n+page-1)/page]
		err = mincore(m, v)
		unix.Munmap(m)
		if err != nil {
			return 0, 0, fmt.Errorf("pagecache: mincore %s: %w", path, err)
		}
		for i, b := range v {
			if b&1 == 0 {
				continue
			}
			// The last page of the file counts only its bytes.
			in += min(page, n-int64(i)*page)
		}
	}
	return in, size, nil
}

// mincore fills vec with the residency of the pages of the mapping m
// (golang.org/x/sys/unix has no wrapper for it on Linux).
func mincore(m, vec []byte) error {
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(m))), uintptr(len(m)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if e != 0 {
		return e
	}
	return nil
}
