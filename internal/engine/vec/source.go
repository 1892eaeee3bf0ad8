//go:build outboxindexer_vecsource

// This file is never built (no build uses its tag). It records that package
// vec is generated from the sqlite-vec C source of
// github.com/asg017/sqlite-vec-go-bindings/cgo (see build/build.sh), so that
// go.mod keeps requiring that module at the version the script compiles.
package vec

import _ "github.com/asg017/sqlite-vec-go-bindings/cgo"
