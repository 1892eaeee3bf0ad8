package bench

import (
	"context"
	"fmt"
	"sync"
)

// experiment is a measurement that yields several figures at once (p50 and
// p99 of one lag run; storage before and after updates). Each figure is a
// Workload of its own; the k-th repetition of every figure reads the k-th
// run of the experiment, which the first figure to need it performs, so no
// run is wasted and each figure still gets one value per repetition.
type experiment struct {
	run func(ctx context.Context, dir string) (map[string]float64, error)

	mu       sync.Mutex
	results  []map[string]float64
	consumed map[int]int // by figure
	figures  int
}

func newExperiment(run func(ctx context.Context, dir string) (map[string]float64, error)) *experiment {
	return &experiment{run: run, consumed: map[int]int{}}
}

// figure returns a Workload reading figure key of the experiment; each
// Workload returned reads the runs in order, independently of the others.
func (e *experiment) figure(name, unit, key string) Workload {
	e.mu.Lock()
	id := e.figures
	e.figures++
	e.mu.Unlock()
	return Workload{Name: name, Unit: unit, Run: func(ctx context.Context, dir string) (float64, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		i := e.consumed[id]
		if i >= len(e.results) {
			r, err := e.run(ctx, dir)
			if err != nil {
				return 0, err
			}
			e.results = append(e.results, r)
		}
		e.consumed[id] = i + 1
		v, ok := e.results[i][key]
		if !ok {
			return 0, fmt.Errorf("bench: experiment has no figure %q", key)
		}
		return v, nil
	}}
}
