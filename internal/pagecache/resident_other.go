//go:build !linux

package pagecache

// resident cannot tell on this platform.
func resident(string) (int64, int64, error) { return 0, 0, ErrUnsupported }
