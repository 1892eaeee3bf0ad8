// Package bench is the performance harness: workloads that measure this
// product ("ours") and, in the same run on the same data, the baseline each
// target is defined against, then report medians, min–max and the ratio.
// `indexer bench` prints its table; the go test benchmarks reuse the same
// workloads.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Direction says which way a ratio is good.
type Direction int

const (
	// LowerIsBetter is for costs (seconds, bytes).
	LowerIsBetter Direction = iota
	// HigherIsBetter is for throughputs (rows/s).
	HigherIsBetter
)

// Workload measures one figure. Run returns the figure (in Unit) of one
// repetition; it gets a fresh directory per call.
type Workload struct {
	Name string
	Unit string
	Run  func(ctx context.Context, dir string) (float64, error)
}

// Case is one line of the report: our workload against its baseline.
type Case struct {
	ID        string // the target number, e.g. "1"
	Name      string
	Ours      Workload
	Baseline  Workload // zero Run: report only
	Direction Direction
	Target    float64 // ratio target: ≤ Target for LowerIsBetter, ≥ Target for HigherIsBetter; 0 = report only
	// Pair, when set, measures the case by interleaving two steppers block
	// by block within each repetition (see Interleave) instead of running
	// the Ours and Baseline workloads one after the other; Ours and
	// Baseline then only name the sides and their unit.
	Pair *PairSpec
}

// PairSpec is an interleaved measurement: Ours and Base alternate every
// Block of N operations, on two fresh databases per repetition, and swap
// the roles of first and second set up from one repetition to the next.
type PairSpec struct {
	Ours, Base Stepper
	N, Block   int
}

// PairCase returns a Case that measures ours against base interleaved,
// in µs per operation of unit ("µs/row", "µs/op").
func PairCase(id, name string, ours, base Stepper, n, block int, unit string, target float64) Case {
	return Case{
		ID: id, Name: name, Target: target,
		Ours:     Workload{Name: ours.Name, Unit: unit},
		Baseline: Workload{Name: base.Name, Unit: unit},
		Pair:     &PairSpec{Ours: ours, Base: base, N: n, Block: block},
	}
}

// Stat summarises repetitions.
type Stat struct {
	Median, Min, Max float64
	N                int
}

func summarize(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Result is a measured Case.
type Result struct {
	Case
	Ours, Base Stat
	// Ratio is Ours.Median / Base.Median (NaN when there is no baseline);
	// for interleaved cases, the median of the repetitions' ratios.
	Ratio float64
	// Ratios summarises the repetitions' ratios of an interleaved case
	// (N = 0 otherwise).
	Ratios Stat
	Err    error
}

// Met reports whether the target is met (true for report-only cases).
func (r Result) Met() bool {
	if r.Target == 0 || math.IsNaN(r.Ratio) {
		return true
	}
	if r.Direction == HigherIsBetter {
		return r.Ratio >= r.Target
	}
	return r.Ratio <= r.Target
}

// Runner runs cases with interleaved repetitions (ours, baseline, baseline,
// ours, ours, …) so that drift of the machine and the order of the two
// affect both sides alike. Cases with a Pair interleave inside each
// repetition.
type Runner struct {
	Reps    int
	TempDir func() (string, error) // a fresh directory per repetition
	Log     func(format string, args ...any)
}

// Run measures every case.
func (r *Runner) Run(ctx context.Context, cases []Case) []Result {
	out := make([]Result, 0, len(cases))
	for _, c := range cases {
		if c.Pair != nil {
			out = append(out, r.runPair(ctx, c)...)
			continue
		}
		res := Result{Case: c, Ratio: math.NaN()}
		var ours, base []float64
		for i := 0; i < max(r.Reps, 1) && res.Err == nil; i++ {
			sides := []struct {
				w   Workload
				dst *[]float64
			}{{c.Ours, &ours}, {c.Baseline, &base}}
			if i%2 == 1 { // alternate which side goes first
				sides[0], sides[1] = sides[1], sides[0]
			}
			for _, side := range sides {
				if side.w.Run == nil {
					continue
				}
				dir, err := r.TempDir()
				if err != nil {
					res.Err = err
					break
				}
				v, err := side.w.Run(ctx, dir)
				if err != nil {
					res.Err = fmt.Errorf("%s: %w", side.w.Name, err)
					break
				}
				*side.dst = append(*side.dst, v)
				if r.Log != nil {
					r.Log("%s  %-40s %12.4g %s", c.ID, side.w.Name, v, side.w.Unit)
				}
			}
		}
		res.Ours, res.Base = summarize(ours), summarize(base)
		if len(base) > 0 && res.Base.Median != 0 {
			res.Ratio = res.Ours.Median / res.Base.Median
		}
		out = append(out, res)
	}
	return out
}

// runPair measures an interleaved case. For a case with a target, when the
// platform reports CPU time, a second, report-only result gives the
// CPU-time ratio.
func (r *Runner) runPair(ctx context.Context, c Case) []Result {
	res := Result{Case: c, Ratio: math.NaN()}
	var ours, base, ratios, ocpu, bcpu, cpuRatios []float64
	for i := 0; i < max(r.Reps, 1); i++ {
		dirA, err := r.TempDir()
		var dirB string
		if err == nil {
			dirB, err = r.TempDir()
		}
		var p Pair
		if err == nil {
			p, err = InterleaveAlternating(ctx, c.Pair.Ours, c.Pair.Base, dirA, dirB, c.Pair.N, c.Pair.Block, i)
		}
		if err != nil {
			res.Err = err
			return []Result{res}
		}
		ours, base, ratios = append(ours, p.A), append(base, p.B), append(ratios, p.Ratio)
		if p.CPURatio > 0 {
			ocpu, bcpu, cpuRatios = append(ocpu, p.ACPU), append(bcpu, p.BCPU), append(cpuRatios, p.CPURatio)
		}
		if r.Log != nil {
			r.Log("%s  %-40s %12.4g %s  (interleaved with %s: %12.4g, ratio %.3f, CPU ratio %.3f)", c.ID, c.Ours.Name, p.A, c.Ours.Unit, c.Baseline.Name, p.B, p.Ratio, p.CPURatio)
		}
	}
	res.Ours, res.Base, res.Ratios = summarize(ours), summarize(base), summarize(ratios)
	res.Ratio = res.Ratios.Median
	out := []Result{res}
	if len(cpuRatios) > 0 && c.Target != 0 {
		cpu := Result{Case: Case{ID: c.ID, Name: c.Name + ", CPU time", Ours: Workload{Name: c.Ours.Name, Unit: "CPU-µs/op"}, Baseline: Workload{Name: c.Baseline.Name, Unit: "CPU-µs/op"}}}
		cpu.Ours, cpu.Base, cpu.Ratios = summarize(ocpu), summarize(bcpu), summarize(cpuRatios)
		cpu.Ratio = cpu.Ratios.Median
		out = append(out, cpu)
	}
	return out
}

// Print writes the results as an aligned table.
func Print(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tmeasurement\tours (median [min–max])\tbaseline (median [min–max])\tratio\ttarget\tmet")
	for _, r := range results {
		target := "report"
		if r.Target != 0 {
			op := "≤"
			if r.Direction == HigherIsBetter {
				op = "≥"
			}
			target = fmt.Sprintf("%s %.2f×", op, r.Target)
		}
		met := "yes"
		if !r.Met() {
			met = "NO"
		}
		if r.Err != nil {
			what := "error"
			if errors.Is(r.Err, ErrUnavailable) {
				what = "unavailable"
			}
			msg, _, _ := strings.Cut(r.Err.Error(), "\n")
			fmt.Fprintf(tw, "%s\t%s\t%s: %s\t\t\t%s\t-\n", r.ID, r.Name, what, msg, target)
			continue
		}
		ratio := "-"
		if !math.IsNaN(r.Ratio) {
			ratio = fmt.Sprintf("%.3f×", r.Ratio)
			if r.Ratios.N > 1 {
				ratio += fmt.Sprintf(" [%.3f–%.3f]", r.Ratios.Min, r.Ratios.Max)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, fmtStat(r.Ours, r.Ours.N, r.Case.Ours.Unit), fmtStat(r.Base, r.Base.N, r.Baseline.Unit), ratio, target, met)
	}
	tw.Flush()
}

func fmtStat(s Stat, n int, unit string) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%s [%s–%s] %s", num(s.Median), num(s.Min), num(s.Max), unit)
}

func num(x float64) string {
	switch {
	case x == 0:
		return "0"
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 1:
		return fmt.Sprintf("%.2f", x)
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", x), "0"), ".")
	}
}

// Since returns the seconds elapsed since t.
func Since(t time.Time) float64 { return time.Since(t).Seconds() }
