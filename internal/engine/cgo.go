//go:build outboxindexer_cgo

package engine

/*
#include <stdlib.h>
#include <sqlite3.h>

int oi_install(void);
int oi_create_function(sqlite3 *db, const char *name, int nArg, int idx);
int oi_function_index(sqlite3_context *ctx);
void oi_result_text(sqlite3_context *ctx, const char *p, int n);
void oi_result_blob(sqlite3_context *ctx, const void *p, int n);
*/
import "C"

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	sqlitevec "github.com/asg017/sqlite-vec-go-bindings/cgo"
	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// Name names the engine this build runs on.
const Name = "mattn/go-sqlite3 (cgo; build tag outboxindexer_cgo)"

// SQLiteVersion is the SQLite version the engine embeds (mattn/go-sqlite3
// v1.14.53).
const SQLiteVersion = "3.54.1"

// DriverName is the database/sql driver name the engine's driver registers.
const DriverName = "sqlite3"

// init registers sqlite-vec on every connection (sqlite3_auto_extension,
// through sqlite-vec-go-bindings/cgo) and the functions of RegisterFunction.
// FTS5 is compiled into SQLite by mattn/go-sqlite3's sqlite_fts5 build tag:
// build with -tags outboxindexer_cgo,sqlite_fts5 (Check fails at open
// without it).
func init() {
	sqlitevec.Auto()
	if rc := C.oi_install(); rc != 0 {
		panic(fmt.Sprintf("engine: sqlite3_auto_extension: %d", rc))
	}
}

// dsnQuery returns the connection parameters DSN adds, in mattn/go-sqlite3's
// spelling.
func dsnQuery() [][2]string {
	return [][2]string{
		{"_busy_timeout", fmt.Sprint(DefaultBusyTimeoutMS)},
		{"_journal_mode", "WAL"},
		{"_synchronous", "NORMAL"},
		{"_recursive_triggers", "1"},
		{"_txlock", "immediate"},
	}
}

// foreignKeysParam is the DSN parameter that turns foreign keys on.
func foreignKeysParam() (key, value string) { return "_foreign_keys", "1" }

// busyTimeout returns the busy timeout the DSN parameter k=v sets:
// _busy_timeout=ms or _timeout=ms.
func busyTimeout(k, v string) (int, bool) {
	if k != "_busy_timeout" && k != "_timeout" {
		return 0, false
	}
	ms, err := strconv.Atoi(v)
	return ms, err == nil
}

// BusyTimeoutParam returns the DSN parameter, and its value, that sets a
// busy timeout of ms milliseconds on the engine's driver.
func BusyTimeoutParam(ms int) (key, value string) {
	return "_busy_timeout", strconv.Itoa(ms)
}

// dsnParams spells p for mattn/go-sqlite3, which knows a fixed set of
// parameters and no arbitrary PRAGMA.
func dsnParams(p Params) (url.Values, error) {
	if len(p.Pragmas) > 0 {
		return nil, fmt.Errorf("%w: PRAGMAs %q in a DSN", ErrUnsupported, p.Pragmas)
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.Itoa(p.BusyTimeoutMS))
	if p.JournalMode != "" {
		q.Set("_journal_mode", strings.ToUpper(p.JournalMode))
	}
	if p.TxLock != "" {
		q.Set("_txlock", p.TxLock)
	}
	return q, nil
}

// Dialector returns the gorm dialector of the engine for dsn (a DSN as made
// by DSN): gorm.io/driver/sqlite.
func Dialector(dsn string) gorm.Dialector { return sqlite.Open(dsn) }

// DialectorDB returns the gorm dialector of the engine over an open pool
// whose connections come from Connector.
func DialectorDB(pool gorm.ConnPool) gorm.Dialector {
	return sqlite.New(sqlite.Config{Conn: pool})
}

// Connector returns a database/sql connector of the engine's driver for dsn,
// for callers that wrap its connections.
func Connector(dsn string) (driver.Connector, error) {
	return connector{dsn: dsn, drv: &sqlite3.SQLiteDriver{}}, nil
}

type connector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.drv }

// code returns err's primary SQLite result code.
func code(err error) (Code, bool) {
	var e sqlite3.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return Code(e.Code), true
}

// extendedCode returns err's extended SQLite result code.
func extendedCode(err error) (int, bool) {
	var e sqlite3.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return int(e.ExtendedCode), true
}

// NewError returns an error of the engine's driver carrying the primary
// result code c, as the driver itself would report it (for fault injection
// in tests). ErrorCode, Transient and ReadOnly classify it like a real one.
func NewError(c Code) error {
	return sqlite3.Error{Code: sqlite3.ErrNo(c), ExtendedCode: sqlite3.ErrNoExtended(c)}
}

var functions struct {
	sync.RWMutex
	list []function
}

type function struct {
	name *C.char
	nArg int
	fn   Func
}

// RegisterFunction makes fn the deterministic, innocuous SQL function name
// with nArg arguments on every connection opened afterwards (call it from an
// init function).
func RegisterFunction(name string, nArg int, fn Func) {
	functions.Lock()
	defer functions.Unlock()
	functions.list = append(functions.list, function{name: C.CString(name), nArg: nArg, fn: fn})
}

//export oiRegisterFunctions
func oiRegisterFunctions(db *C.sqlite3) C.int {
	functions.RLock()
	defer functions.RUnlock()
	for i, f := range functions.list {
		if rc := C.oi_create_function(db, f.name, C.int(f.nArg), C.int(i)); rc != C.SQLITE_OK {
			return rc
		}
	}
	return C.SQLITE_OK
}

//export oiCallFunction
func oiCallFunction(ctx *C.sqlite3_context, argc C.int, argv **C.sqlite3_value) {
	functions.RLock()
	f := functions.list[C.oi_function_index(ctx)]
	functions.RUnlock()
	args := make([]any, int(argc))
	for i, v := range unsafe.Slice(argv, int(argc)) {
		switch C.sqlite3_value_type(v) {
		case C.SQLITE_INTEGER:
			args[i] = int64(C.sqlite3_value_int64(v))
		case C.SQLITE_FLOAT:
			args[i] = float64(C.sqlite3_value_double(v))
		case C.SQLITE_TEXT:
			p := C.sqlite3_value_text(v)
			args[i] = C.GoStringN((*C.char)(unsafe.Pointer(p)), C.sqlite3_value_bytes(v))
		case C.SQLITE_BLOB:
			p := C.sqlite3_value_blob(v)
			n := int(C.sqlite3_value_bytes(v))
			if n == 0 || p == nil {
				args[i] = []byte{}
			} else {
				args[i] = unsafe.Slice((*byte)(p), n)
			}
		}
	}
	res, err := f.fn(args)
	if err != nil {
		msg := C.CString(err.Error())
		defer C.free(unsafe.Pointer(msg))
		C.sqlite3_result_error(ctx, msg, -1)
		return
	}
	switch r := res.(type) {
	case nil:
		C.sqlite3_result_null(ctx)
	case int64:
		C.sqlite3_result_int64(ctx, C.sqlite3_int64(r))
	case float64:
		C.sqlite3_result_double(ctx, C.double(r))
	case string:
		p := C.CString(r)
		defer C.free(unsafe.Pointer(p))
		C.oi_result_text(ctx, p, C.int(len(r)))
	case []byte:
		var p unsafe.Pointer
		if len(r) > 0 {
			p = C.CBytes(r)
			defer C.free(p)
		}
		C.oi_result_blob(ctx, p, C.int(len(r)))
	default:
		msg := C.CString(fmt.Sprintf("engine: function returned %T", res))
		defer C.free(unsafe.Pointer(msg))
		C.sqlite3_result_error(ctx, msg, -1)
	}
}

// BuildTags are the build tags that select this engine, for tests and tools
// that build the module's programs with `go build`.
const BuildTags = "outboxindexer_cgo,sqlite_fts5"
