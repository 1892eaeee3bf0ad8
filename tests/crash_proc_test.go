package tests

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/tests/internal/reliab"
)

// relProc is a subprocess of a reliability test.
type relProc struct {
	cmd  *exec.Cmd
	out  *reliab.SyncBuffer
	done chan struct{}
	code int
}

// relStart starts prog with args; the process is killed at the end of the
// test if it is still running.
func relStart(t *testing.T, bins reliab.Binaries, prog string, args ...string) *relProc {
	t.Helper()
	c, out := bins.Command(prog, args...)
	require.NoError(t, c.Start())
	p := &relProc{cmd: c, out: out, done: make(chan struct{})}
	go func() {
		err := c.Wait()
		p.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
			if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
				p.code = -int(st.Signal())
			}
		} else if err != nil {
			p.code = -1000
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = c.Process.Signal(syscall.SIGCONT)
			_ = c.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *relProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *relProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if p.exited() {
		return
	}
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// wait waits for the process to exit (at most two minutes) and returns its
// exit code (minus the signal number when a signal killed it).
func (p *relProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not exit; output:\n%s", p.cmd.Path, p.out)
	}
	return p.code
}

// kill sends SIGKILL and waits.
func (p *relProc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	p.wait(t)
}

// waitOutput waits until the process has written s (at most a minute).
func (p *relProc) waitOutput(t *testing.T, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(p.out.String(), s) || p.exited() }, time.Minute, 5*time.Millisecond)
	require.Contains(t, p.out.String(), s, "%s exited before writing %q", p.cmd.Path, s)
}
