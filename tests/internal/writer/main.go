// Command writer is the application side of the crash tests in tests/: it
// opens a database prepared by gormplugin.Migrate for the reliab models and
// runs reliab.Workload steps through gorm and the capture plugin, until
// --ops steps are done or it is killed.
//
// Each committed step has a row in wr_ledger (written in the step's own
// transaction); after the commit, the writer also appends "writer seq" to
// --journal and fsyncs it, so that the test can cross-check that every step
// the writer saw commit is in the database.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(1)
	}
}

func run() error {
	dbPath := flag.String("db", "", "database path")
	id := flag.String("id", "w", "writer identity")
	seed := flag.Uint64("seed", 1, "random seed")
	ops := flag.Int("ops", 0, "steps to run (0: until killed)")
	journal := flag.String("journal", "", "journal file (appended, fsynced after each commit)")
	flag.Parse()
	if *dbPath == "" || *journal == "" {
		return fmt.Errorf("--db and --journal are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	db, err := gorm.Open(engine.Dialector(engine.DSN(*dbPath)), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	if err := db.Use(gormplugin.New()); err != nil {
		return err
	}
	if err := gormplugin.Migrate(db, reliab.Models()...); err != nil {
		return err
	}
	if err := db.Exec(reliab.LedgerDDL).Error; err != nil {
		return err
	}
	j, err := os.OpenFile(*journal, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer j.Close()
	w := reliab.NewWorkload(*id, *seed)
	for i := 0; *ops == 0 || i < *ops; i++ {
		if ctx.Err() != nil {
			return nil
		}
		seq, _, err := w.Step(ctx, db)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if seq == 0 {
			continue
		}
		if _, err := fmt.Fprintf(j, "%s %d\n", *id, seq); err != nil {
			return err
		}
		if err := j.Sync(); err != nil {
			return err
		}
	}
	return nil
}
