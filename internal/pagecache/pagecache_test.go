package pagecache_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/outboxindexer/outboxindexer/internal/pagecache"
)

// A file just written is in the page cache; once its pages are written back
// and dropped (posix_fadvise DONTNEED), it is not; a missing file is empty.
func TestResident(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		_, err := pagecache.Resident(os.Args[0])
		require.ErrorIs(t, err, pagecache.ErrUnsupported)
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	// Not a multiple of the page size: the last page counts its bytes.
	data := make([]byte, 3<<20+123)
	for i := range data {
		data[i] = byte(i)
	}
	require.NoError(t, os.WriteFile(path, data, 0o600))
	r, err := pagecache.Resident(path)
	require.NoError(t, err)
	require.InDelta(t, 1.0, r, 1e-9)

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Sync())
	require.NoError(t, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED))
	r, err = pagecache.Resident(path)
	require.NoError(t, err)
	require.Less(t, r, 0.5, "after DONTNEED")

	// Read back half: at least that half resident (the kernel may read
	// ahead past it), the missing file and an empty one weighing nothing.
	buf := make([]byte, len(data)/2)
	_, err = f.ReadAt(buf, 0)
	require.NoError(t, err)
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	r, err = pagecache.Resident(path, filepath.Join(dir, "missing"), empty)
	require.NoError(t, err)
	require.GreaterOrEqual(t, r, float64(len(buf))/float64(len(data))-0.01)

	r, err = pagecache.Resident(filepath.Join(dir, "missing"))
	require.NoError(t, err)
	require.Equal(t, 1.0, r)
}
