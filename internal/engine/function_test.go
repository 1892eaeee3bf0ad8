package engine_test

import (
	"errors"
	"fmt"

	"github.com/outboxindexer/outboxindexer/internal/engine"
)

func init() {
	engine.RegisterFunction("oi_test_type", 1, func(args []any) (any, error) {
		return fmt.Sprintf("%T", args[0]), nil
	})
	engine.RegisterFunction("oi_test_echo", 1, func(args []any) (any, error) {
		if args[0] == "fail" {
			return nil, errors.New("asked to fail")
		}
		return args[0], nil
	})
}
