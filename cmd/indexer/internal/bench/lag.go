package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
)

// Lag (issue 7, target 7): commit→applied latency with the in-process
// worker (indexer.Start, woken by the plugin's WithNotify) while one writer
// goroutine creates Articles at a steady rate.

// LagWarmup is the start of a lag run whose writes are not counted.
const LagWarmup = 500 * time.Millisecond

// lagRun writes single-row Creates at rate per second for d and returns
// the lag percentiles in ms ("p50", "p99", "max") and the achieved rate
// ("rate"). A write's commit time is when its Create returned (an upper
// bound: the lag is, if anything, under-stated by the few µs between the
// commit and the return); it is applied when the worker commits a batch
// whose checkpoint reaches its event (the log is fresh and has one writer,
// so the k-th write is event k).
func lagRun(ctx context.Context, dir string, rate int, d time.Duration) (map[string]float64, error) {
	var mu sync.Mutex
	type applied struct {
		at time.Time
		cp int64
	}
	var batches []applied
	var w *indexer.Worker
	var wMu sync.Mutex
	notify := func() {
		wMu.Lock()
		x := w
		wMu.Unlock()
		if x != nil {
			x.Notify()
		}
	}
	db, err := openIndexed(ctx, dir, gormplugin.WithNotify(notify))
	if err != nil {
		return nil, err
	}
	defer Close(db)
	obs := indexer.Observer{Batch: func(s indexer.BatchStats) {
		now := time.Now()
		mu.Lock()
		batches = append(batches, applied{at: now, cp: s.Checkpoint})
		mu.Unlock()
	}}
	worker, err := indexer.Start(ctx, db, indexer.WithObserver(obs))
	if err != nil {
		return nil, err
	}
	wMu.Lock()
	w = worker
	wMu.Unlock()
	defer worker.Close()

	total := int(d.Seconds() * float64(rate))
	rows := articles(min(total, 20000))
	commits := make([]time.Time, total)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		a := rows[i%len(rows)]
		a.ID = 0
		if err := db.WithContext(ctx).Create(&a).Error; err != nil {
			return nil, err
		}
		commits[i] = time.Now()
	}
	elapsed := time.Since(start)
	if err := worker.Sync(ctx); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	var lags []float64
	b := 0
	for i, c := range commits {
		for b < len(batches) && batches[b].cp < int64(i+1) {
			b++
		}
		if b == len(batches) {
			return nil, fmt.Errorf("bench: write %d was never applied (last checkpoint %d)", i+1, batches[len(batches)-1].cp)
		}
		if c.Sub(start) < LagWarmup {
			continue
		}
		lags = append(lags, max(batches[b].at.Sub(c), 0).Seconds()*1e3)
	}
	if len(lags) == 0 {
		return nil, fmt.Errorf("bench: lag run too short")
	}
	slices.Sort(lags)
	pct := func(p float64) float64 { return lags[min(int(p*float64(len(lags))), len(lags)-1)] }
	return map[string]float64{
		"p50":  pct(0.50),
		"p99":  pct(0.99),
		"max":  lags[len(lags)-1],
		"rate": float64(total) / elapsed.Seconds(),
	}, nil
}

// LagCases returns target 7's cases at rate writes/s sustained for d (30 s
// in the full run): p99 against the 50 ms target (a ratio of 1 is the
// target), p50, and the rate the writer achieved (the worker competes with
// it for the write lock). Every repetition is one run shared by the three
// figures.
func LagCases(rate int, d time.Duration) []Case {
	e := newExperiment(func(ctx context.Context, dir string) (map[string]float64, error) {
		return lagRun(ctx, dir, rate, d)
	})
	name := func(what string) string { return fmt.Sprintf("lag at %d writes/s for %v: %s", rate, d, what) }
	target := 0.0
	if rate <= 200 {
		target = 1
	}
	return []Case{
		{ID: "7", Name: name("p99 vs 50 ms"), Ours: e.figure("ours: commit→applied p99", "ms", "p99"), Baseline: Constant("target: 50 ms", "ms", 50), Target: target},
		{ID: "7", Name: name("p50"), Ours: e.figure("ours: commit→applied p50", "ms", "p50")},
		{ID: "7", Name: name("max"), Ours: e.figure("ours: commit→applied max", "ms", "max")},
		{ID: "7", Name: name("achieved write rate"), Ours: e.figure("writer: Creates per second", "writes/s", "rate"), Baseline: Constant(fmt.Sprintf("asked: %d/s", rate), "writes/s", float64(rate)), Direction: HigherIsBetter, Target: 0.95},
	}
}
