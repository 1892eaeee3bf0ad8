package outbox

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Side files. An online rebuild of a table with integer keys in a database
// file builds its next generation in a database file of its own beside the
// main one (SideFile), so that the build itself takes no lock an
// application waits on; the indexer then copies the finished tables into
// the main file in short transactions (PhaseMove). The side file belongs to
// one rebuild: its name holds the table and the rebuild's start time, and
// DiscardRebuild removes it with the rebuild.

// MainFile returns the path of the main database file of db, "" when it
// has none (an in-memory or temporary database).
func MainFile(ctx context.Context, db DB) (string, error) {
	var f string
	if err := db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&f); err != nil {
		return "", fmt.Errorf("outbox: main database file: %w", err)
	}
	return f, nil
}

// sidePrefix is what the names of source's side files beside mainFile
// start with (the table name hex-encoded: any name makes a file name).
func sidePrefix(mainFile, source string) string {
	return mainFile + ".oi-rebuild-" + hex.EncodeToString([]byte(source)) + "-"
}

// SideFile returns the path of the side file of the online rebuild of
// source, beside mainFile, that started at started.
func SideFile(mainFile, source string, started time.Time) string {
	return sidePrefix(mainFile, source) + strconv.FormatInt(started.UnixNano(), 36) + ".db"
}

// RemoveSideFiles removes the side files of source's online rebuilds
// beside mainFile (with their -wal and -shm files), except those of keep
// ("" removes all). A side file is only ever rebuilt from the main file, so
// removing one loses nothing but the work that went into it.
func RemoveSideFiles(mainFile, source, keep string) error {
	if mainFile == "" {
		return nil
	}
	prefix := sidePrefix(mainFile, source)
	entries, err := os.ReadDir(filepath.Dir(prefix))
	if err != nil {
		return fmt.Errorf("outbox: side files of %s: %w", source, err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(filepath.Dir(prefix), e.Name())
		if !strings.HasPrefix(p, prefix) || (keep != "" && strings.HasPrefix(p, keep)) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("outbox: remove side files of %s: %w", source, err)
	}
	return nil
}
