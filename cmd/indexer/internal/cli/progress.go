package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress modes for --progress.
const (
	ProgressAuto = "auto" // a bar when stderr is a terminal, log lines otherwise
	ProgressBar  = "bar"  // always a bar
	ProgressLog  = "log"  // always periodic log lines
	ProgressOff  = "off"  // only the final summary
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Progress reports the advance of a long operation (drain, rebuild) either as
// a progress bar on a terminal or as a log line every interval. It is safe
// for concurrent use.
type Progress struct {
	mu       sync.Mutex
	label    string
	unit     string
	log      *slog.Logger
	every    time.Duration
	w        io.Writer
	useBar   bool
	bar      *progressbar.ProgressBar // drawn from the first update with work to show
	start    time.Time
	lastLog  time.Time
	done     int64
	total    int64
	finished bool
}

// CheckProgressMode validates a --progress value.
func CheckProgressMode(mode string) error {
	switch mode {
	case ProgressAuto, ProgressBar, ProgressLog, ProgressOff:
		return nil
	}
	return Usagef("--progress %q: want auto, bar, log or off", mode)
}

// NewProgress returns a progress reporter for the operation label ("drain",
// "rebuild"). mode is one of the Progress* constants; bars are drawn on w,
// log lines go to log every interval.
func NewProgress(label, mode string, w io.Writer, log *slog.Logger, every time.Duration) (*Progress, error) {
	if err := CheckProgressMode(mode); err != nil {
		return nil, err
	}
	p := &Progress{label: label, unit: "events", log: log, every: every, w: w, start: time.Now()}
	p.lastLog = p.start
	switch mode {
	case ProgressAuto:
		p.useBar = IsTerminal(w)
	case ProgressBar:
		p.useBar = true
	case ProgressOff:
		p.every = 0
	}
	return p, nil
}

func (p *Progress) newBar(total int64) *progressbar.ProgressBar {
	w := p.w
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(p.label),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(p.unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}

// Bar reports whether p draws a progress bar.
func (p *Progress) Bar() bool { return p.useBar }

// SetUnit renames what is counted ("events", "rows"); call it before the
// first Update.
func (p *Progress) SetUnit(unit string) {
	p.mu.Lock()
	p.unit = unit
	p.mu.Unlock()
}

// Update records that done of total units are finished (total ≤ 0: not
// known). total may change between calls.
func (p *Progress) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.done, p.total = done, total
	if p.useBar {
		if p.bar == nil {
			if total <= 0 && done == 0 {
				return // nothing to show yet
			}
			if total <= 0 {
				total = -1 // unknown: a spinner
			}
			p.bar = p.newBar(total)
		}
		if total > 0 && p.bar.GetMax64() != total {
			p.bar.ChangeMax64(total)
		}
		_ = p.bar.Set64(done)
		return
	}
	now := time.Now()
	if p.every > 0 && now.Sub(p.lastLog) >= p.every {
		p.lastLog = now
		p.logLine(now, "progress")
	}
}

func (p *Progress) logLine(now time.Time, msg string) {
	elapsed := now.Sub(p.start)
	attrs := []any{"op", p.label, "done", p.done}
	if p.total > 0 {
		attrs = append(attrs, "total", p.total, "percent", fmt.Sprintf("%.1f", 100*float64(p.done)/float64(p.total)))
	}
	if s := elapsed.Seconds(); s > 0 {
		attrs = append(attrs, "rate_per_s", fmt.Sprintf("%.0f", float64(p.done)/s))
	}
	attrs = append(attrs, "elapsed", elapsed.Round(time.Millisecond).String())
	p.log.Info(msg, attrs...)
}

// Finish ends the bar (or stops the log lines). Further Updates are ignored.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	if p.bar != nil {
		if p.total > 0 && p.done >= p.total {
			_ = p.bar.Finish() // draws the full bar, then the completion newline
		} else {
			_ = p.bar.Exit() // keeps the bar as it stands, then the newline
		}
	}
}
