#!/usr/bin/env bash
# Builds package vec (../vec.go, ../libc.go, ../vec.dat): sqlite-vec compiled
# to a dylink.0 Wasm module and translated to Go by wasm2go, for the
# ncruces/go-sqlite3 driver, which links it into each connection with
# sqlite3.ExtensionInit.
#
# Inputs, all pinned:
#   - sqlite-vec.c: the cgo package of github.com/asg017/sqlite-vec-go-bindings,
#     at the version go.mod requires (module cache, `go list -m`);
#   - SQLite's headers (declarations only; the code links against the driver's
#     own SQLite at run time): github.com/mattn/go-sqlite3 at the version
#     go.mod requires (the cgo engine's driver; SQLite 3.54.1, as ncruces');
#   - the C library headers and the Go libc functions: wasm2go's libc-gen, and
#     the translator itself: github.com/ncruces/wasm2go at WASM2GO_VERSION;
#   - Debian's clang, lld and binaryen (apt-get install clang lld binaryen).
#
# Running it twice gives identical files; .ci/run rebuilds and diffs them.
set -euo pipefail
cd -P -- "$(dirname -- "$0")"

WASM2GO_VERSION=v0.4.21
OUT=..
HERE="$(pwd)"

for tool in clang wasm-ld wasm-opt; do
	command -v "$tool" >/dev/null || { echo "build.sh: $tool missing (apt-get install -y clang lld binaryen)" >&2; exit 1; }
done

go mod download github.com/asg017/sqlite-vec-go-bindings github.com/mattn/go-sqlite3
VEC_DIR="$(go list -m -f '{{.Dir}}' github.com/asg017/sqlite-vec-go-bindings)/cgo"
MATTN_DIR="$(go list -m -f '{{.Dir}}' github.com/mattn/go-sqlite3)"
[ -f "$VEC_DIR/sqlite-vec.c" ] || { echo "build.sh: no sqlite-vec.c in $VEC_DIR" >&2; exit 1; }
[ -f "$MATTN_DIR/sqlite3-binding.h" ] || { echo "build.sh: no sqlite3-binding.h in $MATTN_DIR" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

LIBC_GEN="go run github.com/ncruces/wasm2go/libc-gen@$WASM2GO_VERSION"
WASM2GO="go run github.com/ncruces/wasm2go@$WASM2GO_VERSION"

# The freestanding C library (headers and the few parts written in C).
$LIBC_GEN -c-out "$TMP/libc"

# SQLite's public header under the name sqlite-vec includes.
printf '#include "sqlite3-binding.h"\n' >"$TMP/sqlite3.h"

# sqlite-vec's three float32 distance loops are implemented in Go
# (../distance.go, which says why): their definitions are renamed out of the
# way here, and the prelude of vec.c below defines the original names as
# calls to imports that wasm2go binds to the Go methods (-provided).
sed -e 's/^static f32 distance_cosine_float(/static f32 oi_c_distance_cosine_float(/' \
	-e 's/^static f32 l2_sqr_float(/static f32 oi_c_l2_sqr_float(/' \
	-e 's/^static double l1_f32(/static double oi_c_l1_f32(/' \
	"$VEC_DIR/sqlite-vec.c" >"$TMP/sqlite-vec.c"
for fn in distance_cosine_float l2_sqr_float l1_f32; do
	grep -q "^static [a-z0-9]* oi_c_$fn(" "$TMP/sqlite-vec.c" || {
		echo "build.sh: sqlite-vec.c no longer defines $fn as this script expects" >&2
		exit 1
	}
done

# The translation unit: sqlite-vec, the C parts of libc, and the entry point
# the driver calls (sqlite3.ExtensionLibrary). sqlite3_free is passed as a
# destructor (its address is taken), which a side module could only import
# through a GOT entry; a local wrapper keeps the import a plain call.
cat >"$TMP/vec.c" <<'CSRC'
#include "sqlite3.h"

static void oi_vec_free(void *p) { sqlite3_free(p); }
#define sqlite3_free oi_vec_free

#include <stddef.h>

/* Imports, implemented in Go by ../distance.go. */
float oi_cosine_f32(const float *a, const float *b, size_t n);
float oi_l2_f32(const float *a, const float *b, size_t n);
double oi_l1_f32(const float *a, const float *b, size_t n);
static float distance_cosine_float(const void *a, const void *b, const void *d) {
  return oi_cosine_f32(a, b, *(const size_t *)d);
}
static float l2_sqr_float(const void *a, const void *b, const void *d) {
  return oi_l2_f32(a, b, *(const size_t *)d);
}
static double l1_f32(const void *a, const void *b, const void *d) {
  return oi_l1_f32(a, b, *(const size_t *)d);
}

#include "sqlite-vec.c"
#include "libc.c"

int sqlite3_extension_init(sqlite3 *db, char **pzErrMsg,
                           const sqlite3_api_routines *pApi) {
  return sqlite3_vec_init(db, pzErrMsg, pApi);
}
CSRC

# -O2, not -Oz: sqlite-vec's distance loops are the KNN hot path. In two
# interleaved A/B runs of indexer bench --only 12 (5k rows, 3 reps, a loaded
# 2-core VM) vec0 KNN took 1.75-1.77x the cgo engine's time at -O2 against
# 1.83-1.85x at -Oz; -O3 measured no better than -O2.
# Debian's clang 14: the emscripten triple makes wasm-ld honour -fPIC and
# emit a dylink.0 side module; it lacks __builtin_roundeven{,f}, which Wasm's
# nearest instruction (what rint lowers to) computes exactly. libc-gen's
# errno.h has no ERANGE (its strtod never sets errno); sqlite-vec tests for it.
clang --target=wasm32-unknown-emscripten -ffreestanding -nostdlib -std=c2x -g0 -O2 \
	-fPIC -fno-ident -ffile-prefix-map="$TMP"=. -ffile-prefix-map="$VEC_DIR"=. \
	-I"$TMP" -I"$TMP/libc" -I"$VEC_DIR" -I"$MATTN_DIR" \
	-D__builtin_roundeven=__builtin_rint -D__builtin_roundevenf=__builtin_rintf \
	-DERANGE=34 -DSQLITE_CORE -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_VEC_OMIT_FS -DNDEBUG \
	-Wno-everything \
	-mmutable-globals -mmultivalue -mnontrapping-fptoint -msign-ext \
	-mreference-types -mbulk-memory \
	-Wl,-shared -Wl,--experimental-pic \
	-Wl,--no-entry -Wl,--import-undefined \
	-Wl,--export=sqlite3_extension_init \
	-o "$TMP/vec.so" "$TMP/vec.c"

wasm-opt "$TMP/vec.so" -o "$TMP/vec.wasm" -O3 \
	--enable-mutable-globals --enable-multivalue \
	--enable-nontrapping-float-to-int --enable-sign-ext \
	--enable-reference-types --enable-bulk-memory \
	--strip-debug --strip-producers

(cd "$TMP" && $LIBC_GEN -wasm vec.wasm -pkg vec -o libc.go)
(cd "$TMP" && cp "$HERE/../distance.go" . && $WASM2GO -pkg vec -embed -unsafe -provided libc.go -provided distance.go -o vec.go vec.wasm)
cp "$TMP/vec.go" "$TMP/libc.go" "$TMP/vec.dat" "$OUT/"
gofmt -w "$OUT/vec.go" "$OUT/libc.go"
