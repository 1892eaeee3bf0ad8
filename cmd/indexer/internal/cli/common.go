package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Environment variables that give the common flags their defaults.
const (
	EnvDB        = "INDEXER_DB"         // --db
	EnvLogFormat = "INDEXER_LOG_FORMAT" // --log-format
	EnvLogLevel  = "INDEXER_LOG_LEVEL"  // --log-level
)

// Common holds the flags every subcommand that opens a database accepts.
type Common struct {
	DB        string
	LogFormat string
	LogLevel  string
	CacheDir  string // --cache-dir: deprecated, ignored (see NoteDeprecated)

	env *Env
}

// Register adds --db, --log-format, --log-level and --cache-dir to fs, with
// defaults taken from the environment. Without withDB, --db is left out (for
// commands that open no database the user names).
func (c *Common) Register(fs *flag.FlagSet, env *Env, withDB bool) {
	c.env = env
	def := func(name, fallback string) string {
		if v := env.Getenv(name); v != "" {
			return v
		}
		return fallback
	}
	if withDB {
		fs.StringVar(&c.DB, "db", def(EnvDB, ""), "database file path or SQLite URI (file:...?...) (env "+EnvDB+")")
	}
	fs.StringVar(&c.LogFormat, "log-format", def(EnvLogFormat, "text"), "log format on stderr: text or json (env "+EnvLogFormat+")")
	fs.StringVar(&c.LogLevel, "log-level", def(EnvLogLevel, "info"), "log level: debug, info, warn or error (env "+EnvLogLevel+")")
	fs.StringVar(&c.CacheDir, "cache-dir", "", "deprecated and ignored: the engine compiles nothing at start-up any more (accepted until the next release)")
}

// Logger builds the slog logger the flags ask for, writing to stderr. Bad
// values are usage errors.
func (c *Common) Logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, Usagef("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(c.LogFormat) {
	case "text":
		h = slog.NewTextHandler(c.env.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(c.env.Stderr, opts)
	default:
		return nil, Usagef("--log-format %q: want text or json", c.LogFormat)
	}
	return slog.New(h), nil
}

// Level returns the parsed --log-level (info when it does not parse).
func (c *Common) Level() slog.Level {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return level
}

// NoteDeprecated logs, at debug level, that --cache-dir was given and is
// ignored. The flag configured the Wasm compilation cache of the former
// wazero engine; the engine is now plain Go code with nothing to compile at
// start-up, and the flag is accepted, as a no-op, for one more release so
// that existing scripts keep working.
func (c *Common) NoteDeprecated(log *slog.Logger) {
	if c.CacheDir != "" {
		log.Debug("--cache-dir is deprecated and ignored: the engine has no compilation cache", "cache-dir", c.CacheDir)
	}
}

// ResolveDSN turns the --db value into a connection string and the file it
// names. A plain path goes through engine.DSN (WAL, busy timeout, immediate
// transactions). A "file:" URI is kept, with a busy timeout added when it has
// none. Either way the database is opened with mode=rw unless the URI says
// otherwise, so that a mistyped path is an error instead of a new, empty
// database.
func ResolveDSN(db string) (dsn, path string, err error) {
	if db == "" {
		return "", "", Usagef("--db is required (or set %s)", EnvDB)
	}
	if !strings.HasPrefix(db, "file:") {
		return engine.DSN(db) + "&mode=rw", db, nil
	}
	u, err := url.Parse(db)
	if err != nil {
		return "", "", Usagef("--db %q: %v", db, err)
	}
	path = u.Opaque
	if path == "" {
		path = u.Path
	}
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	q := u.Query()
	engine.EnsureBusyTimeout(q)
	if q.Get("mode") == "" {
		q.Set("mode", "rw")
	}
	if q.Get("mode") == "memory" || path == ":memory:" {
		path = ""
	}
	u.RawQuery = q.Encode()
	return u.String(), path, nil
}

// ErrNoDatabase reports a --db that names no existing file.
var ErrNoDatabase = errors.New("database does not exist")

// Open opens the database named by --db with gorm. The file must exist.
// The returned close function closes the pool.
func (c *Common) Open(ctx context.Context, log *slog.Logger) (*gorm.DB, func() error, error) {
	dsn, path, err := ResolveDSN(c.DB)
	if err != nil {
		return nil, nil, err
	}
	if path != "" {
		st, err := os.Stat(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil, fmt.Errorf("%w: %s", ErrNoDatabase, path)
			}
			return nil, nil, fmt.Errorf("database %s: %w", path, err)
		}
		if st.IsDir() {
			return nil, nil, fmt.Errorf("database %s is a directory", path)
		}
	}
	c.NoteDeprecated(log)
	return OpenDSN(ctx, dsn, log, c.Level())
}

// OpenDSN opens dsn with gorm (gorm's own log routed to log at warn level
// when level is debug, silenced otherwise) and checks the engine.
func OpenDSN(ctx context.Context, dsn string, log *slog.Logger, level slog.Level) (*gorm.DB, func() error, error) {
	glog := logger.Discard
	if level <= slog.LevelDebug {
		glog = logger.NewSlogLogger(log.With("component", "gorm"), logger.Config{
			SlowThreshold:             time.Second,
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
		})
	}
	db, err := gorm.Open(engine.Dialector(dsn), &gorm.Config{Logger: glog})
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	if err := engine.Check(ctx, sqlDB); err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	return db, sqlDB.Close, nil
}
