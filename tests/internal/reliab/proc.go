package reliab

import (
	"bytes"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
)

// Binaries are the programs the crash tests run as subprocesses.
type Binaries struct {
	Indexer string // cmd/indexer
	Writer  string // tests/internal/writer
	Env     []string
}

// Build builds the indexer binary and the writer program into a temp dir of
// t (the go build cache makes this a link step after the first time). They
// are built without the race detector: the subprocesses are killed on
// purpose and their speed matters; cmd/indexer's own tests run the binary
// with -race.
func Build(t testing.TB) Binaries {
	t.Helper()
	dir := t.TempDir()
	b := Binaries{Indexer: filepath.Join(dir, "indexer"), Writer: filepath.Join(dir, "writer")}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	outs := make([][]byte, 2)
	for i, p := range []struct{ out, pkg string }{
		{b.Indexer, "github.com/outboxindexer/outboxindexer/cmd/indexer"},
		{b.Writer, "github.com/outboxindexer/outboxindexer/tests/internal/writer"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = exec.Command("go", "build", "-tags", engine.BuildTags, "-o", p.out, p.pkg).CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range errs {
		require.NoError(t, errs[i], "go build: %s", outs[i])
	}
	b.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return b
}

// Command returns the program with args and the test environment; its
// output goes to the returned buffer (safe to read after Wait).
func (b Binaries) Command(prog string, args ...string) (*exec.Cmd, *SyncBuffer) {
	c := exec.Command(prog, args...)
	c.Env = b.Env
	var buf SyncBuffer
	c.Stdout, c.Stderr = &buf, &buf
	return c, &buf
}

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Open opens the database at path with the recommended DSN and the capture
// plugin (waking the in-process workers after commits).
func Open(t testing.TB, path string) *gorm.DB {
	t.Helper()
	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New(gormplugin.WithNotify(indexer.Wake))))
	return db
}

// Prepare creates a database at path with the test models migrated and the
// ledger table, and returns it open.
func Prepare(t testing.TB, path string) *gorm.DB {
	t.Helper()
	db := Open(t, path)
	require.NoError(t, gormplugin.Migrate(db, Models()...))
	require.NoError(t, db.Exec(LedgerDDL).Error)
	return db
}

// PrepareIndexed is Prepare followed by an indexer's creation of its own
// bookkeeping tables (indexer.New), so that triggers can be installed on
// them; it returns the gorm handle and its *sql.DB.
func PrepareIndexed(t testing.TB, path string) (*gorm.DB, *sql.DB) {
	t.Helper()
	db := Prepare(t, path)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	ix, err := indexer.New(db)
	require.NoError(t, err)
	require.NoError(t, ix.Close())
	return db, sqlDB
}
