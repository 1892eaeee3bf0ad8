//go:build !outboxindexer_cgo

package engine

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/ncruces/go-sqlite3"
	sqlite3driver "github.com/ncruces/go-sqlite3/driver"
	"github.com/ncruces/go-sqlite3/ext/fts5"
	"github.com/ncruces/go-sqlite3/gormlite"
	"github.com/outboxindexer/outboxindexer/internal/engine/vec"
	"gorm.io/gorm"
)

// Name names the engine this build runs on.
const Name = "ncruces/go-sqlite3 (pure Go, SQLite translated from Wasm by wasm2go)"

// SQLiteVersion is the SQLite version the engine embeds.
const SQLiteVersion = "3.54.1"

// init registers FTS5 and sqlite-vec on every connection the driver opens:
// the application's, the indexer worker's and the binary's alike. Both are
// dylink.0 Wasm modules translated to Go, linked into each connection.
func init() {
	sqlite3.AutoExtension(func(c *sqlite3.Conn) error {
		if err := fts5.Register(c); err != nil {
			return err
		}
		return sqlite3.ExtensionInit(c, vec.New, vec.DylinkInfo)
	})
}

// dsnQuery returns the connection parameters DSN adds, in
// ncruces/go-sqlite3's spelling. Once a DSN has any _pragma the driver no
// longer adds its own default busy timeout, so it is always explicit.
func dsnQuery() [][2]string {
	return [][2]string{
		{"_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultBusyTimeoutMS)},
		{"_pragma", "journal_mode(wal)"},
		{"_pragma", "synchronous(normal)"},
		{"_pragma", "recursive_triggers(1)"},
		{"_txlock", "immediate"},
	}
}

// foreignKeysParam is the DSN parameter that turns foreign keys on.
func foreignKeysParam() (key, value string) { return "_pragma", "foreign_keys(1)" }

// busyTimeout returns the busy timeout the DSN parameter k=v sets:
// _pragma=busy_timeout(ms).
func busyTimeout(k, v string) (int, bool) {
	if k != "_pragma" {
		return 0, false
	}
	v = strings.ToLower(strings.ReplaceAll(v, " ", ""))
	arg, ok := strings.CutPrefix(v, "busy_timeout(")
	if !ok {
		arg, ok = strings.CutPrefix(v, "busy_timeout=")
	}
	if !ok {
		return 0, false
	}
	ms, err := strconv.Atoi(strings.TrimSuffix(arg, ")"))
	return ms, err == nil
}

// BusyTimeoutParam returns the DSN parameter, and its value, that sets a
// busy timeout of ms milliseconds on the engine's driver.
func BusyTimeoutParam(ms int) (key, value string) {
	return "_pragma", fmt.Sprintf("busy_timeout(%d)", ms)
}

// dsnParams spells p for ncruces/go-sqlite3: every setting is a _pragma
// except the transaction mode.
func dsnParams(p Params) (url.Values, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", p.BusyTimeoutMS))
	if p.JournalMode != "" {
		q.Add("_pragma", "journal_mode("+p.JournalMode+")")
	}
	for _, pr := range p.Pragmas {
		q.Add("_pragma", pr)
	}
	if p.TxLock != "" {
		q.Add("_txlock", p.TxLock)
	}
	return q, nil
}

// Dialector returns the gorm dialector of the engine for dsn (a DSN as made
// by DSN): gormlite.
func Dialector(dsn string) gorm.Dialector { return gormlite.Open(dsn) }

// DialectorDB returns the gorm dialector of the engine over an open pool
// whose connections come from Connector.
func DialectorDB(pool gorm.ConnPool) gorm.Dialector { return gormlite.OpenDB(pool) }

// Connector returns a database/sql connector of the engine's driver for dsn,
// for callers that wrap its connections.
func Connector(dsn string) (driver.Connector, error) {
	return (&sqlite3driver.SQLite{}).OpenConnector(dsn)
}

// code returns err's primary SQLite result code.
func code(err error) (Code, bool) {
	var c sqlite3.ErrorCode
	if !errors.As(err, &c) {
		return 0, false
	}
	return Code(c), true
}

// extendedCode returns err's extended SQLite result code.
func extendedCode(err error) (int, bool) {
	var c sqlite3.ExtendedErrorCode
	if !errors.As(err, &c) {
		return 0, false
	}
	return int(c), true
}

// NewError returns an error of the engine's driver carrying the primary
// result code c, as the driver itself would report it (for fault injection
// in tests). ErrorCode, Transient and ReadOnly classify it like a real one.
func NewError(c Code) error { return sqlite3.ErrorCode(c) }

// RegisterFunction makes fn the deterministic, innocuous SQL function name
// with nArg arguments on every connection opened afterwards (call it from an
// init function).
func RegisterFunction(name string, nArg int, fn Func) {
	sqlite3.AutoExtension(func(c *sqlite3.Conn) error {
		return c.CreateFunction(name, nArg, sqlite3.DETERMINISTIC|sqlite3.INNOCUOUS, func(ctx sqlite3.Context, arg ...sqlite3.Value) {
			args := make([]any, len(arg))
			for i, a := range arg {
				switch a.Type() {
				case sqlite3.INTEGER:
					args[i] = a.Int64()
				case sqlite3.FLOAT:
					args[i] = a.Float()
				case sqlite3.TEXT:
					args[i] = a.Text()
				case sqlite3.BLOB:
					args[i] = a.RawBlob()
				}
			}
			res, err := fn(args)
			if err != nil {
				ctx.ResultError(err)
				return
			}
			switch r := res.(type) {
			case nil:
				ctx.ResultNull()
			case int64:
				ctx.ResultInt64(r)
			case float64:
				ctx.ResultFloat(r)
			case string:
				ctx.ResultText(r)
			case []byte:
				ctx.ResultBlob(r)
			default:
				ctx.ResultError(fmt.Errorf("engine: function %s returned %T", name, res))
			}
		})
	})
}

// DriverName is the database/sql driver name the engine's driver registers.
const DriverName = "sqlite3"

// BuildTags are the build tags that select this engine ("" for the default),
// for tests and tools that build the module's programs with `go build`.
const BuildTags = ""
