package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"gorm.io/gorm"
)

// Stepper is a workload split into steps that can be interleaved with
// another one, block by block, so that a busy machine's drift hits both
// sides alike. Setup prepares the database in dir (not measured) and returns
// the step function, which performs operations [from, to) of n, and a close
// function.
type Stepper struct {
	Name  string
	Setup func(ctx context.Context, dir string, n int) (step func(from, to int) error, done func(), err error)
}

// Workload runs all n operations of s in one step (setup not measured) and
// reports the wall-clock µs per operation in unit.
func (s Stepper) Workload(n int, unit string) Workload {
	return Workload{Name: s.Name, Unit: unit, Run: func(ctx context.Context, dir string) (float64, error) {
		step, done, err := s.Setup(ctx, dir, n)
		if err != nil {
			return 0, err
		}
		defer done()
		start := time.Now()
		if err := step(0, n); err != nil {
			return 0, err
		}
		return Since(start) / float64(n) * 1e6, nil
	}}
}

// Pair is the outcome of Interleave: the cost per operation of each side.
type Pair struct {
	A, B  float64 // wall-clock µs per operation
	Ratio float64 // A / B
	// CPU time of the process (user + system, all threads: GC included) per
	// operation, and its ratio: steadier than wall-clock time on a machine
	// shared with other work. Zero where the platform does not report it.
	ACPU, BCPU, CPURatio float64
}

// Interleave sets both steppers up on n operations in directories dirA and
// dirB, collects the setups' garbage, then runs them alternately in blocks
// of block operations (A, B, B, A, A, B, …, so that neither side always
// goes first) and returns their costs per operation. A is set up first;
// callers that repeat a measurement should alternate the roles (see
// InterleaveAlternating), since being set up first or second is not quite
// neutral.
func Interleave(ctx context.Context, a, b Stepper, dirA, dirB string, n, block int) (Pair, error) {
	stepA, doneA, err := a.Setup(ctx, dirA, n)
	if err != nil {
		return Pair{}, fmt.Errorf("%s: %w", a.Name, err)
	}
	defer doneA()
	stepB, doneB, err := b.Setup(ctx, dirB, n)
	if err != nil {
		return Pair{}, fmt.Errorf("%s: %w", b.Name, err)
	}
	defer doneB()
	// Both setups leave garbage (documents, vectors) that the collector
	// would otherwise charge to whichever side runs while it works.
	runtime.GC()
	var ta, tb, ca, cb time.Duration
	run := func(step func(int, int) error, from, to int, acc, cpu *time.Duration) error {
		c0, start := cpuTime(), time.Now()
		err := step(from, to)
		*acc += time.Since(start)
		*cpu += cpuTime() - c0
		return err
	}
	for k, from := 0, 0; from < n; k, from = k+1, from+block {
		to := min(from+block, n)
		if k%2 == 0 {
			if err := run(stepA, from, to, &ta, &ca); err != nil {
				return Pair{}, fmt.Errorf("%s: %w", a.Name, err)
			}
			if err := run(stepB, from, to, &tb, &cb); err != nil {
				return Pair{}, fmt.Errorf("%s: %w", b.Name, err)
			}
		} else {
			if err := run(stepB, from, to, &tb, &cb); err != nil {
				return Pair{}, fmt.Errorf("%s: %w", b.Name, err)
			}
			if err := run(stepA, from, to, &ta, &ca); err != nil {
				return Pair{}, fmt.Errorf("%s: %w", a.Name, err)
			}
		}
	}
	p := Pair{A: ta.Seconds() / float64(n) * 1e6, B: tb.Seconds() / float64(n) * 1e6}
	p.Ratio = p.A / p.B
	if cb > 0 {
		p.ACPU, p.BCPU = ca.Seconds()/float64(n)*1e6, cb.Seconds()/float64(n)*1e6
		p.CPURatio = p.ACPU / p.BCPU
	}
	return p, nil
}

// InterleaveAlternating is Interleave with the roles of a and b swapped on
// odd repetitions (rep), the result always reported as a against b.
func InterleaveAlternating(ctx context.Context, a, b Stepper, dirA, dirB string, n, block, rep int) (Pair, error) {
	if rep%2 == 0 {
		return Interleave(ctx, a, b, dirA, dirB, n, block)
	}
	p, err := Interleave(ctx, b, a, dirB, dirA, n, block)
	if err != nil {
		return p, err
	}
	p.A, p.B = p.B, p.A
	p.ACPU, p.BCPU = p.BCPU, p.ACPU
	p.Ratio = p.A / p.B
	if p.BCPU > 0 {
		p.CPURatio = p.ACPU / p.BCPU
	}
	return p, nil
}

// openMigrated opens a database in dir with model's table created.
func openMigrated(dir string, model any) (*gorm.DB, error) {
	db, err := Open(dir)
	if err != nil {
		return nil, err
	}
	if err := db.AutoMigrate(model); err != nil {
		Close(db)
		return nil, err
	}
	return db, nil
}

func closer(db *gorm.DB) func() { return func() { Close(db) } }

// StepOursCreate is OursCreate as a Stepper: one single-row Create per
// operation.
func StepOursCreate() Stepper {
	return Stepper{Name: "ours: gorm Create + outbox event", Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
		db, err := openIndexed(ctx, dir)
		if err != nil {
			return nil, nil, err
		}
		rows := articles(n)
		return func(from, to int) error { return createEach(ctx, db, rows[from:to]) }, closer(db), nil
	}}
}

// StepGormBlobCreate is GormBlobCreate as a Stepper.
func StepGormBlobCreate() Stepper {
	return Stepper{Name: "gorm Create, vector as BLOB column", Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
		db, err := openMigrated(dir, &BlobDoc{})
		if err != nil {
			return nil, nil, err
		}
		docs := Docs(n)
		return func(from, to int) error {
			for _, d := range docs[from:to] {
				if err := db.WithContext(ctx).Create(&BlobDoc{Title: d.Title, Body: d.Body, Embedding: d.Vec}).Error; err != nil {
					return err
				}
			}
			return nil
		}, closer(db), nil
	}}
}

// StepSyncCreate is SyncCreate as a Stepper.
func StepSyncCreate() Stepper {
	return Stepper{Name: "synchronous: row + vec0 + FTS5 in the tx", Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
		db, err := openMigrated(dir, &PlainDoc{})
		if err != nil {
			return nil, nil, err
		}
		if err := exec(ctx, db, syncDDL...); err != nil {
			Close(db)
			return nil, nil, err
		}
		docs := Docs(n)
		return func(from, to int) error {
			for _, d := range docs[from:to] {
				err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					p := PlainDoc{Title: d.Title, Body: d.Body}
					if err := tx.Create(&p).Error; err != nil {
						return err
					}
					if err := tx.Exec(`INSERT INTO plain_docs_vec(rowid, embedding) VALUES (?, ?)`, p.ID, d.VecBytes).Error; err != nil {
						return err
					}
					return tx.Exec(`INSERT INTO plain_docs_fts(rowid, title, body) VALUES (?, ?, ?)`, p.ID, d.Title, d.Body).Error
				})
				if err != nil {
					return err
				}
			}
			return nil
		}, closer(db), nil
	}}
}

// StepOursCreateInBatches is OursCreateInBatches as a Stepper: each block
// is given to one CreateInBatches(batch) call (use a block that is a
// multiple of batch).
func StepOursCreateInBatches(batch int) Stepper {
	return Stepper{Name: fmt.Sprintf("ours: CreateInBatches(%d) + events", batch), Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
		db, err := openIndexed(ctx, dir)
		if err != nil {
			return nil, nil, err
		}
		rows := articles(n)
		return func(from, to int) error {
			return db.WithContext(ctx).CreateInBatches(rows[from:to], batch).Error
		}, closer(db), nil
	}}
}

// StepGormBlobCreateInBatches is GormBlobCreateInBatches as a Stepper.
func StepGormBlobCreateInBatches(batch int) Stepper {
	return Stepper{Name: fmt.Sprintf("gorm CreateInBatches(%d), BLOB column", batch), Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
		db, err := openMigrated(dir, &BlobDoc{})
		if err != nil {
			return nil, nil, err
		}
		rows := make([]BlobDoc, n)
		for i, d := range Docs(n) {
			rows[i] = BlobDoc{Title: d.Title, Body: d.Body, Embedding: d.Vec}
		}
		return func(from, to int) error {
			return db.WithContext(ctx).CreateInBatches(rows[from:to], batch).Error
		}, closer(db), nil
	}}
}

func stepUpdateViews(ctx context.Context, db *gorm.DB, model any) func(int, int) error {
	return func(from, to int) error {
		for i := from + 1; i <= to; i++ {
			if err := db.WithContext(ctx).Model(model).Where("id = ?", i).Update("views", gorm.Expr("views + 1")).Error; err != nil {
				return err
			}
		}
		return nil
	}
}

// StepOursUpdateCounter is OursUpdateCounter as a Stepper.
func StepOursUpdateCounter() Stepper {
	return Stepper{Name: "ours: Update of a non-indexed column", Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
		db, err := openIndexed(ctx, dir)
		if err != nil {
			return nil, nil, err
		}
		if err := db.WithContext(ctx).CreateInBatches(articles(n), 500).Error; err != nil {
			Close(db)
			return nil, nil, err
		}
		return stepUpdateViews(ctx, db, &Article{}), closer(db), nil
	}}
}

// StepPlainUpdateCounter is PlainUpdateCounter as a Stepper.
func StepPlainUpdateCounter() Stepper {
	return Stepper{Name: "plain gorm Update, no plugin", Setup: func(ctx context.Context, dir string, n int) (func(int, int) error, func(), error) {
		db, err := openMigrated(dir, &CounterDoc{})
		if err != nil {
			return nil, nil, err
		}
		rows := make([]CounterDoc, n)
		for i, d := range Docs(n) {
			rows[i] = CounterDoc{Title: d.Title, Body: d.Body}
		}
		if err := db.WithContext(ctx).CreateInBatches(rows, 500).Error; err != nil {
			Close(db)
			return nil, nil, err
		}
		return stepUpdateViews(ctx, db, &CounterDoc{}), closer(db), nil
	}}
}
