package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/outbox"
)

var deadlettersCommand = cli.Command{
	Name:    "deadletters",
	Summary: "list the parked events; --retry re-queues them",
	Run:     runDeadLetters,
}

const deadlettersHelp = `
List the events parked in oi_deadletters after they kept failing, with their
last error and attempt count.

With --retry, move them back into the log as new events, applied after
everything pending by the next drain or by a running indexer: all of them,
or those given with --id (every dead letter of the same table and key comes
along, so that a key's changes are never applied out of order). Fix the
cause first; "indexer rebuild --table T" also folds a table's dead letters
back by itself.`

// int64sFlag is a repeatable integer flag (--id 3 --id 7, or --id 3,7).
type int64sFlag []int64

func (f *int64sFlag) String() string {
	s := make([]string, len(*f))
	for i, v := range *f {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, ",")
}

func (f *int64sFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not an event id", p)
		}
		*f = append(*f, n)
	}
	return nil
}

var _ flag.Value = (*int64sFlag)(nil)

type deadLetterJSON struct {
	ID       int64     `json:"id"`
	Table    string    `json:"table"`
	Key      any       `json:"key"`
	Op       string    `json:"op"`
	At       time.Time `json:"at"`
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	FailedAt time.Time `json:"failed_at"`
}

func opName(op int64) string { return outbox.Op(op).String() }

func keyString(k any) string {
	if b, ok := k.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(k)
}

func runDeadLetters(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("deadletters", "[flags]", deadlettersHelp)
	var c cli.Common
	c.Register(fs, env, true)
	retry := fs.Bool("retry", false, "re-queue dead letters (all, or those given with --id) instead of listing them")
	var ids int64sFlag
	fs.Var(&ids, "id", "with --retry: a dead letter id to re-queue (repeatable, or comma-separated)")
	asJSON := fs.Bool("json", false, "list as JSON")
	if err := cli.ParseFlags(env, fs, args, false); err != nil {
		return err
	}
	if len(ids) > 0 && !*retry {
		return cli.Usagef("--id needs --retry")
	}
	log, err := c.Logger()
	if err != nil {
		return err
	}
	s, err := c.OpenIndexer(ctx, log)
	if err != nil {
		return err
	}
	defer s.Close()

	if *retry {
		n, err := s.Indexer.RetryDeadLetters(ctx, ids...)
		if err != nil {
			return err
		}
		if len(ids) > 0 && n == 0 {
			return fmt.Errorf("no dead letter with id %s", ids.String())
		}
		log.Info("dead letters re-queued", "events", n)
		fmt.Fprintf(env.Stdout, "re-queued %d events\n", n)
		return nil
	}

	dls, err := s.Indexer.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]deadLetterJSON, 0, len(dls))
		for _, d := range dls {
			var key any = d.Key
			if b, ok := d.Key.([]byte); ok {
				key = string(b)
			}
			out = append(out, deadLetterJSON{ID: d.ID, Table: d.Table, Key: key, Op: opName(d.Op), At: time.Unix(0, d.At).UTC(),
				Error: d.Error, Attempts: d.Attempts, FailedAt: d.FailedAt.UTC()})
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(dls) == 0 {
		fmt.Fprintln(env.Stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTABLE\tKEY\tOP\tATTEMPTS\tFAILED AT\tERROR")
	for _, d := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Table, keyString(d.Key), opName(d.Op), d.Attempts,
			d.FailedAt.UTC().Format(time.RFC3339), strings.ReplaceAll(d.Error, "\n", " "))
	}
	return tw.Flush()
}
