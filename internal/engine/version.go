package engine

// VecVersion is the sqlite-vec version this module is built and tested with,
// on every engine: the C source of github.com/asg017/sqlite-vec-go-bindings
// (go.mod pins it), compiled by the script in vec/build for the default
// engine and by cgo for the cgo engine.
const VecVersion = "v0.1.6"
