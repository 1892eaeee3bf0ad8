package engine

// Func implements an SQL scalar function registered with RegisterFunction.
// Each argument is nil (NULL), int64, float64, string (TEXT) or []byte
// (BLOB; valid only during the call, never retained or modified). It returns
// nil (NULL), an int64, a float64, a string or a []byte, or an error that
// fails the statement.
type Func func(args []any) (any, error)
