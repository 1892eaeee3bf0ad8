package cli

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/engine"
	"github.com/stretchr/testify/require"
)

func TestResolveDSNPath(t *testing.T) {
	t.Parallel()
	dsn, path, err := ResolveDSN("/data/app db.sqlite")
	require.NoError(t, err)
	require.Equal(t, "/data/app db.sqlite", path)
	require.True(t, strings.HasPrefix(dsn, "file:/data/app%20db.sqlite?"), dsn)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	require.Equal(t, "rw", q.Get("mode"), "a plain path must never create a database")
	require.Equal(t, "immediate", q.Get("_txlock"))
	ms, ok := engine.BusyTimeoutMS(q)
	require.True(t, ok, dsn)
	require.Equal(t, engine.DefaultBusyTimeoutMS, ms)
}

func TestResolveDSNURI(t *testing.T) {
	t.Parallel()
	// A busy timeout the URI sets, in the spelling of the engine's driver,
	// is kept.
	k, v := engine.BusyTimeoutParam(500)
	own := "file:/srv/app.db?" + url.Values{k: {v}}.Encode()
	for _, tc := range []struct {
		in, path, mode string
		busy           int
	}{
		{"file:app.db", "app.db", "rw", 10000},
		{own, "/srv/app.db", "rw", 500},
		{"file:/srv/app.db?mode=ro", "/srv/app.db", "ro", 10000},
		{"file:/srv/a%20b.db?_pragma=journal_mode(wal)", "/srv/a b.db", "rw", 10000},
		{"file::memory:?mode=memory", "", "memory", 10000},
	} {
		dsn, path, err := ResolveDSN(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.path, path, tc.in)
		u, err := url.Parse(dsn)
		require.NoError(t, err)
		require.Equal(t, tc.mode, u.Query().Get("mode"), tc.in)
		ms, ok := engine.BusyTimeoutMS(u.Query())
		require.True(t, ok, tc.in)
		require.Equal(t, tc.busy, ms, tc.in)
	}
}

func TestResolveDSNEmptyIsUsage(t *testing.T) {
	t.Parallel()
	_, _, err := ResolveDSN("")
	require.ErrorIs(t, err, ErrUsage)
	require.Contains(t, err.Error(), EnvDB)
	require.Equal(t, ExitUsage, ExitCode(err))
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	require.Equal(t, ExitOK, ExitCode(nil))
	require.Equal(t, ExitOK, ExitCode(flag.ErrHelp))
	require.Equal(t, ExitUsage, ExitCode(Usagef("bad %s", "x")))
	require.Equal(t, ExitFailure, ExitCode(errors.New("boom")))
	require.Equal(t, ExitFailure, ExitCode(ErrNoDatabase))
}

func testEnv(env map[string]string) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}, &out, &errb
}

func TestParseFlagsHelpAndErrors(t *testing.T) {
	t.Parallel()
	env, out, errb := testEnv(nil)
	fs := FlagSet("drain", "[flags]", "Apply what is pending.")
	var c Common
	c.Register(fs, env, true)
	err := ParseFlags(env, fs, []string{"--help"}, false)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, out.String(), "Usage: indexer drain [flags]")
	require.Contains(t, out.String(), "-db")
	require.Empty(t, errb.String())

	env, out, errb = testEnv(nil)
	fs = FlagSet("drain", "[flags]", "")
	c.Register(fs, env, true)
	err = ParseFlags(env, fs, []string{"--nope"}, false)
	require.ErrorIs(t, err, ErrUsage)
	require.Empty(t, out.String())
	require.Contains(t, errb.String(), "flag provided but not defined: -nope")
	// Already printed: Report stays silent.
	var rep bytes.Buffer
	Report(&rep, "drain", err)
	require.Empty(t, rep.String())

	env, _, _ = testEnv(nil)
	fs = FlagSet("drain", "[flags]", "")
	err = ParseFlags(env, fs, []string{"extra"}, false)
	require.ErrorIs(t, err, ErrUsage)
}

func TestCommonFromEnvironment(t *testing.T) {
	t.Parallel()
	env, _, errb := testEnv(map[string]string{EnvDB: "/x.db", EnvLogFormat: "json", EnvLogLevel: "warn"})
	fs := FlagSet("status", "[flags]", "")
	var c Common
	c.Register(fs, env, true)
	require.NoError(t, ParseFlags(env, fs, nil, false))
	require.Equal(t, "/x.db", c.DB)
	log, err := c.Logger()
	require.NoError(t, err)
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	require.NotContains(t, errb.String(), "hidden")
	require.Contains(t, errb.String(), `"msg":"shown"`)

	// The flag wins over the environment.
	fs = FlagSet("status", "[flags]", "")
	c.Register(fs, env, true)
	require.NoError(t, ParseFlags(env, fs, []string{"--db", "/y.db", "--log-level", "bogus"}, false))
	require.Equal(t, "/y.db", c.DB)
	_, err = c.Logger()
	require.ErrorIs(t, err, ErrUsage)
	require.Contains(t, err.Error(), "bogus")
}

func TestStringsFlag(t *testing.T) {
	t.Parallel()
	var s StringsFlag
	require.NoError(t, s.Set("a"))
	require.NoError(t, s.Set("b, c"))
	require.Equal(t, StringsFlag{"a", "b", "c"}, s)
	require.Error(t, s.Set("d,,e"))
}

func TestProgressLogLinesWithoutTerminal(t *testing.T) {
	t.Parallel()
	var logs, w bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	// A bytes.Buffer is not a terminal: auto means log lines. An interval
	// of 1ns logs every update (0 would mean no periodic lines).
	p, err := NewProgress("drain", ProgressAuto, &w, log, 1)
	require.NoError(t, err)
	require.False(t, p.Bar())
	p.Update(10, 100)
	p.Update(100, 100)
	p.Finish()
	p.Update(200, 200) // ignored after Finish
	require.Empty(t, w.String(), "no bar on a non-terminal")
	require.Contains(t, logs.String(), "op=drain done=100 total=100 percent=100.0")
	require.NotContains(t, logs.String(), "done=200")

	_, err = NewProgress("drain", "sometimes", &w, log, 1)
	require.ErrorIs(t, err, ErrUsage)
}

func TestProgressBarForced(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	p, err := NewProgress("rebuild", ProgressBar, &w, slog.New(slog.DiscardHandler), 0)
	require.NoError(t, err)
	require.True(t, p.Bar())
	p.Update(50, 100)
	p.Update(100, 100)
	p.Finish()
	require.Contains(t, w.String(), "rebuild")
	require.Contains(t, w.String(), "100%")
}
