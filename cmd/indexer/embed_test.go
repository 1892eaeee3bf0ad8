package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/internal/embedtest"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Memo's vector is derived from its text by the indexer: the binary builds
// the embedder from its --embed-* flags.
type Memo struct {
	ID        uint
	Subject   string
	Text      string
	Embedding vecsink.Embedding `vec:"dim=8;metric=cosine;from=Subject,Text"`
}

func openMemos(t *testing.T, path string, n int) {
	t.Helper()
	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &Memo{}))
	var memos []Memo
	for i := range n {
		memos = append(memos, Memo{Subject: fmt.Sprintf("memo %d", i), Text: fmt.Sprintf("about topic%d", i%5)})
	}
	require.NoError(t, db.Create(&memos).Error)
}

// checkMemos asserts that every memo has the HashEmbedder vector of its text.
func checkMemos(t *testing.T, path string, n int) {
	t.Helper()
	db := testdb.Open(t, path)
	var memos []Memo
	require.NoError(t, db.Order("id").Find(&memos).Error)
	require.Len(t, memos, n)
	for _, m := range memos {
		v, err := vecsink.HashEmbedder(8).Embed(context.Background(), []string{outbox.EmbedText([]any{m.Subject, m.Text})})
		require.NoError(t, err)
		want, err := outbox.EncodeVector(v[0], 8, outbox.EncodingBinary)
		require.NoError(t, err)
		sqlDB, err := db.DB()
		require.NoError(t, err)
		live, err := outbox.LiveTable(context.Background(), sqlDB, "memos_vec")
		require.NoError(t, err)
		var got []byte
		require.NoError(t, sqlDB.QueryRow(`SELECT embedding FROM `+outbox.Quote(live)+` WHERE rowid = ?`, m.ID).Scan(&got))
		require.Equal(t, want, got, "memo %d", m.ID)
	}
}

func fakeService(t *testing.T) *embedtest.Server {
	t.Helper()
	srv, err := embedtest.New(func(s string) []float32 {
		v, _ := vecsink.HashEmbedder(8).Embed(context.Background(), []string{s})
		return v[0]
	}, time.Millisecond)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return srv
}

func TestDrainEmbedFlags(t *testing.T) {
	t.Parallel()
	srv := fakeService(t)
	srv.SetFault(func(n int64, _ []string) embedtest.Fault {
		if n == 1 {
			return embedtest.Fault{Status: 429, RetryAfter: "0"}
		}
		return embedtest.Fault{}
	})
	path := testdb.Path(t)
	openMemos(t, path, 70)

	// Without an embedder: a clear error, nothing parked.
	r := run(t, nil, "drain", "--db", path)
	require.NotEqual(t, 0, r.code)
	require.Contains(t, r.stderr, "from=")
	require.Contains(t, r.stderr, "--embed-api")
	st := status(t, path)
	require.Zero(t, st.DeadLetters)

	// Usage errors name the flag.
	r = run(t, nil, "drain", "--db", path, "--embed-api", "cohere", "--embed-model", "m")
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "--embed-api")
	r = run(t, nil, "drain", "--db", path, "--embed-api", "openai")
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "--embed-model")

	for _, api := range []string{"openai", "ollama"} {
		url := srv.URL()
		if api == "openai" {
			url += "/v1"
		}
		r = run(t, []string{vecsink.APIKeyEnv + "=sk-secret-key"}, "drain", "--db", path, "--embed-api", api, "--embed-url", url, "--embed-model", "m",
			"--embed-batch", "16", "--embed-concurrency", "2", "--embed-rate", "100", "--log-format", "json", "--log-level", "debug")
		require.Equal(t, 0, r.code, r.stderr)
		require.NotContains(t, r.stderr, "sk-secret-key")
		require.NotContains(t, r.stdout, "sk-secret-key")
		checkMemos(t, path, 70)
		st = status(t, path)
		require.Zero(t, st.EmbedQueued)
		require.Zero(t, st.Pending)
		if api == "openai" {
			require.Contains(t, r.stdout, "embedded 70 keys")
			// A rebuild with the same model reuses every vector.
			r = run(t, nil, "rebuild", "--db", path, "--embed-api", api, "--embed-url", url, "--embed-model", "m")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "embedded 0 keys (70 unchanged)")
		} else {
			// Another API is another model: the texts are embedded again
			// only after a rebuild (which queues every key); a drain alone
			// has nothing to do.
			require.Contains(t, r.stdout, "embedded 0 keys")
		}
	}
	checkMemos(t, path, 70)
}

func TestRunEmbedMetrics(t *testing.T) {
	t.Parallel()
	srv := fakeService(t)
	path := testdb.Path(t)
	openMemos(t, path, 40)
	p := start(t, nil, "run", "--db", path, "--metrics-addr", "127.0.0.1:0", "--poll-interval", "10ms", "--log-format", "json",
		"--embed-api", "ollama", "--embed-url", srv.URL(), "--embed-model", "m", "--embed-batch", "8")
	rec := p.waitLog(t, "serving metrics")
	addr, _ := rec["addr"].(string)
	var fams map[string]*dto.MetricFamily
	for {
		fams = scrape(t, addr)
		if value(t, fams, "outboxindexer_embed_queued_keys") == 0 && value(t, fams, "outboxindexer_pending_events") == 0 &&
			value(t, fams, "outboxindexer_embed_keys_total", "outcome", "embedded") == 40 {
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("not embedded; stderr:\n%s", p.errText())
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.EqualValues(t, 40, value(t, fams, "outboxindexer_embed_texts_total"))
	require.EqualValues(t, 5, value(t, fams, "outboxindexer_embed_requests_total"))
	require.EqualValues(t, 0, value(t, fams, "outboxindexer_embed_errors_total", "class", "transient"))
	require.Positive(t, value(t, fams, "outboxindexer_embed_request_seconds_total"))
	require.EqualValues(t, 0, value(t, fams, "outboxindexer_table_embed_queued_keys", "table", "memos"))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	r := p.wait(t)
	require.Equal(t, 0, r.code, r.stderr)
	checkMemos(t, path, 40)
	require.False(t, strings.Contains(r.stderr, `"level":"ERROR"`), r.stderr)
}

// Note2 has two derived vectors: one from the default embedder, one from
// the embedder named "small" (embedder=small), which the binary takes
// from --embedder.
type Note2 struct {
	ID        uint
	Subject   string
	Text      string
	Embedding vecsink.Embedding `vec:"dim=8;metric=cosine;from=Text"`
	Short     vecsink.Embedding `vec:"dim=8;metric=cosine;from=Subject;embedder=small"`
}

func TestDrainNamedEmbedderFlag(t *testing.T) {
	t.Parallel()
	def, small := fakeService(t), fakeService(t)
	path := testdb.Path(t)
	db := testdb.Open(t, path)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &Note2{}))
	const n = 30
	var notes []Note2
	for i := range n {
		notes = append(notes, Note2{Subject: fmt.Sprintf("subject %d", i), Text: fmt.Sprintf("text of note %d", i)})
	}
	require.NoError(t, db.Create(&notes).Error)

	// The default embedder alone: the error names the missing one.
	r := run(t, nil, "drain", "--db", path, "--embed-api", "openai", "--embed-url", def.URL()+"/v1", "--embed-model", "m")
	require.NotEqual(t, 0, r.code)
	require.Contains(t, r.stderr, `embedder "small"`)
	for _, bad := range []string{"name=small", "api=ollama,model=m", "name=small,api=ollama,model=m,colour=red", "name=small,api=cohere,model=m"} {
		r = run(t, nil, "drain", "--db", path, "--embedder", bad)
		require.Equal(t, 2, r.code, "%s: %s", bad, r.stderr)
		require.Contains(t, r.stderr, "-embedder", bad)
	}

	r = run(t, []string{vecsink.APIKeyEnv + "_SMALL=sk-small-key"}, "drain", "--db", path,
		"--embed-api", "openai", "--embed-url", def.URL()+"/v1", "--embed-model", "m",
		"--embedder", "name=small,api=ollama,model=m,url="+small.URL(), "--log-level", "debug")
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stderr+r.stdout, "sk-small-key")
	require.EqualValues(t, n, def.Texts(), "the default embedder embeds the texts")
	require.EqualValues(t, n, small.Texts(), "the named one embeds the subjects")
	st := status(t, path)
	require.Zero(t, st.EmbedQueued)
	require.Zero(t, st.DeadLetters)

	sqlDB, err := db.DB()
	require.NoError(t, err)
	spec, err := outbox.LoadSpec(context.Background(), sqlDB, db.NamingStrategy.TableName("Note2"))
	require.NoError(t, err)
	vs := spec.VecSpecs()
	require.Len(t, vs, 2)
	for _, v := range vs {
		for _, m := range notes {
			text := m.Text
			if v.Embedder == "small" {
				text = m.Subject
			}
			e, err := vecsink.HashEmbedder(8).Embed(context.Background(), []string{outbox.EmbedText([]any{text})})
			require.NoError(t, err)
			want, err := outbox.EncodeVector(e[0], 8, outbox.EncodingBinary)
			require.NoError(t, err)
			var got []byte
			require.NoError(t, sqlDB.QueryRow(`SELECT `+v.Column+` FROM `+v.Live()+` WHERE rowid = ?`, m.ID).Scan(&got))
			require.Equal(t, want, got, "%s of note %d", v.Table, m.ID)
		}
	}
}
