package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outboxindexer/outboxindexer/cmd/indexer/internal/cli"
	"github.com/outboxindexer/outboxindexer/indexer"
)

var statusCommand = cli.Command{
	Name:    "status",
	Summary: "show log positions, lag, the lease and per-table counts",
	Run:     runStatus,
}

const statusHelp = `
Print the state of the outbox: the log head, the checkpoint, pending and
retained events, dead letters, the age of the oldest pending event, the
lease, and for every registered table its source rows and sidecar entries.
Problems (a missing sidecar, a table without registry entry) are listed per
table. --json prints the same as one JSON object for scripts.`

// statusJSON is the stable machine form of `status --json`.
type statusJSON struct {
	Head                 int64             `json:"head"`
	Applied              int64             `json:"applied"`
	Pending              int64             `json:"pending"`
	DeadLetters          int64             `json:"dead_letters"`
	Retained             int64             `json:"retained"`
	OldestPendingSeconds float64           `json:"oldest_pending_seconds"`
	EmbedQueued          int64             `json:"embed_queued"`
	Lease                leaseJSON         `json:"lease"`
	Tables               []tableStatusJSON `json:"tables"`
}

type leaseJSON struct {
	Name      string     `json:"name"`
	Holder    string     `json:"holder"`
	Token     int64      `json:"token"`
	Live      bool       `json:"live"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

type tableStatusJSON struct {
	Table       string        `json:"table"`
	SourceRows  int64         `json:"source_rows"`
	Pending     int64         `json:"pending"`
	Retained    int64         `json:"retained"`
	DeadLetters int64         `json:"dead_letters"`
	EmbedQueued int64         `json:"embed_queued"`
	Sidecars    []sidecarJSON `json:"sidecars"`
	Error       string        `json:"error,omitempty"`
	Rebuild     *rebuildJSON  `json:"rebuild,omitempty"`
}

type sidecarJSON struct {
	Name   string `json:"name"`
	Live   string `json:"live"`
	Kind   string `json:"kind"`
	Exists bool   `json:"exists"`
	Rows   int64  `json:"rows"`
}

type rebuildJSON struct {
	Phase      string    `json:"phase"`
	Done       int64     `json:"rows_done"`
	Total      int64     `json:"rows_total"`
	RatePerSec float64   `json:"rate_per_second"`
	ETASeconds float64   `json:"eta_seconds"`
	StartedAt  time.Time `json:"started_at"`
	Building   []string  `json:"building,omitempty"`
}

func toStatusJSON(st indexer.Status) statusJSON {
	out := statusJSON{
		Head: st.Head, Applied: st.Applied, Pending: st.Pending, DeadLetters: st.DeadLetters,
		Retained: st.Retained, OldestPendingSeconds: st.OldestPendingAge.Seconds(), EmbedQueued: st.EmbedQueued,
		Lease:  leaseJSON{Name: st.Lease.Name, Holder: st.Lease.Holder, Token: st.Lease.Token, Live: st.Lease.Live},
		Tables: []tableStatusJSON{},
	}
	if !st.Lease.ExpiresAt.IsZero() && st.Lease.ExpiresAt.Unix() > 0 {
		t := st.Lease.ExpiresAt.UTC()
		out.Lease.ExpiresAt = &t
	}
	for _, t := range st.Tables {
		tj := tableStatusJSON{Table: t.Table, SourceRows: t.SourceRows, Pending: t.Pending, Retained: t.Retained,
			DeadLetters: t.DeadLetters, EmbedQueued: t.EmbedQueued, Error: t.Error, Sidecars: []sidecarJSON{}}
		for _, s := range t.Sidecars {
			tj.Sidecars = append(tj.Sidecars, sidecarJSON{Name: s.Name, Live: s.Live, Kind: s.Kind, Exists: s.Exists, Rows: s.Rows})
		}
		if r := t.Rebuild; r != nil {
			tj.Rebuild = &rebuildJSON{Phase: r.Phase, Done: r.Done, Total: r.Total, RatePerSec: r.Rate, ETASeconds: r.ETA.Seconds(),
				StartedAt: r.StartedAt.UTC(), Building: r.Building}
		}
		out.Tables = append(out.Tables, tj)
	}
	return out
}

func runStatus(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet("status", "[flags]", statusHelp)
	var c cli.Common
	c.Register(fs, env, true)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := cli.ParseFlags(env, fs, args, false); err != nil {
		return err
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
	st, err := s.Indexer.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(toStatusJSON(st))
	}
	printStatus(env.Stdout, st)
	return nil
}

func printStatus(w io.Writer, st indexer.Status) {
	fmt.Fprintf(w, "head %d  applied %d  pending %d  dead letters %d  retained %d\n",
		st.Head, st.Applied, st.Pending, st.DeadLetters, st.Retained)
	if st.EmbedQueued > 0 {
		var per []string
		for _, t := range st.Tables {
			if t.EmbedQueued > 0 {
				per = append(per, fmt.Sprintf("%s %d", t.Table, t.EmbedQueued))
			}
		}
		fmt.Fprintf(w, "keys waiting for embeddings (from=): %d (%s)\n", st.EmbedQueued, strings.Join(per, ", "))
	}
	if st.Pending > 0 {
		fmt.Fprintf(w, "oldest pending event: %s old\n", st.OldestPendingAge.Round(time.Millisecond))
	}
	switch l := st.Lease; {
	case l.Holder == "":
		fmt.Fprintf(w, "lease %q: never taken\n", l.Name)
	case l.Live:
		fmt.Fprintf(w, "lease %q: held by %s (token %d) until %s\n", l.Name, l.Holder, l.Token, l.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "lease %q: free (last holder %s, token %d)\n", l.Name, l.Holder, l.Token)
	}
	if len(st.Tables) == 0 {
		fmt.Fprintln(w, "no registered tables")
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tPENDING\tRETAINED\tDEAD\tSIDECARS\tPROBLEM")
	for _, t := range st.Tables {
		rows := fmt.Sprint(t.SourceRows)
		if t.SourceRows < 0 {
			rows = "-"
		}
		var sc []string
		for _, s := range t.Sidecars {
			name := s.Name
			if s.Live != "" && s.Live != s.Name {
				name += " [" + s.Live + "]"
			}
			if s.Exists {
				sc = append(sc, fmt.Sprintf("%s (%s) %d", name, s.Kind, s.Rows))
			} else {
				sc = append(sc, fmt.Sprintf("%s (%s) missing", name, s.Kind))
			}
		}
		sidecars := strings.Join(sc, ", ")
		if sidecars == "" {
			sidecars = "-"
		}
		problem := t.Error
		if problem == "" {
			problem = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", t.Table, rows, t.Pending, t.Retained, t.DeadLetters, sidecars, problem)
	}
	tw.Flush()
	for _, t := range st.Tables {
		if r := t.Rebuild; r != nil {
			fmt.Fprintln(w, rebuildLine(t.Table, r))
		}
	}
}

// rebuildLine describes an online rebuild in progress.
func rebuildLine(table string, r *indexer.RebuildStatus) string {
	pct := 100.0
	if r.Total > 0 {
		pct = min(100*float64(r.Done)/float64(r.Total), 100)
	}
	s := fmt.Sprintf("rebuild of %s in progress: phase %s, %d/%d rows (%.1f%%), %.0f rows/s", table, r.Phase, r.Done, r.Total, pct, r.Rate)
	if r.ETA > 0 {
		s += fmt.Sprintf(", ETA %s", r.ETA.Round(time.Second))
	}
	if len(r.Building) > 0 {
		s += ", building " + strings.Join(r.Building, ", ")
	}
	return s
}
