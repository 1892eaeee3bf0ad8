//go:build outboxindexer_cgo

// The C side of RegisterFunction on the cgo engine: an auto extension that
// creates every registered function on each new connection, calling back
// into Go (oiRegisterFunctions, oiCallFunction in cgo.go).

#include <stdint.h>
#include <sqlite3.h>

#include "_cgo_export.h"

static void oi_trampoline(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  oiCallFunction(ctx, argc, argv);
}

static int oi_auto_extension(sqlite3 *db, char **pzErrMsg,
                             const struct sqlite3_api_routines *pApi) {
  (void)pzErrMsg;
  (void)pApi;
  return oiRegisterFunctions(db);
}

int oi_install(void) {
  return sqlite3_auto_extension((void (*)(void))oi_auto_extension);
}

int oi_create_function(sqlite3 *db, const char *name, int nArg, int idx) {
  return sqlite3_create_function_v2(
      db, name, nArg, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
      (void *)(intptr_t)idx, oi_trampoline, NULL, NULL, NULL);
}

int oi_function_index(sqlite3_context *ctx) {
  return (int)(intptr_t)sqlite3_user_data(ctx);
}

void oi_result_text(sqlite3_context *ctx, const char *p, int n) {
  sqlite3_result_text(ctx, p, n, SQLITE_TRANSIENT);
}

void oi_result_blob(sqlite3_context *ctx, const void *p, int n) {
  if (n == 0) {
    sqlite3_result_zeroblob(ctx, 0);
    return;
  }
  sqlite3_result_blob(ctx, p, n, SQLITE_TRANSIENT);
}
