package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outboxindexer/outboxindexer/gormplugin"
	"github.com/outboxindexer/outboxindexer/indexer"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Chunking (chunk=N;overlap=M): one vector per chunk of the text, all tied
// to the row; KNN ranks rows by their best chunk, each row once, with the
// chunk's span; edits and deletes replace every chunk.

type embBook struct {
	ID        int64
	Title     string
	Text      string
	Lang      string
	Embedding vecsink.Embedding `vec:"dim=8;metric=cosine;from=Title,Text;chunk=24;overlap=6;metadata=lang"`
	DeletedAt gorm.DeletedAt
}

// wantChunks is the chunk rows HashEmbedder gives a book: rowid → vector|start|end.
func wantChunks(t *testing.T, b embBook) map[int64]string {
	t.Helper()
	text := outbox.EmbedText([]any{b.Title, b.Text})
	out := map[int64]string{}
	if strings.TrimSpace(text) == "" {
		return out
	}
	ch, err := vecsink.NewChunker(24, 6)
	require.NoError(t, err)
	for i, c := range ch.Split(text) {
		v, err := vecsink.HashEmbedder(embDim).Embed(context.Background(), []string{c.Text})
		require.NoError(t, err)
		enc, err := outbox.EncodeVector(v[0], embDim, outbox.EncodingBinary)
		require.NoError(t, err)
		id, err := outbox.ChunkRowID(b.ID, i)
		require.NoError(t, err)
		out[id] = fmt.Sprintf("%x|%d|%d|%s", enc, c.Start, c.End, b.Lang)
	}
	return out
}

func checkBooks(t *testing.T, db *gorm.DB) {
	t.Helper()
	var books []embBook
	require.NoError(t, db.Unscoped().Order("id").Find(&books).Error)
	want := map[int64]string{}
	for _, b := range books {
		for k, v := range wantChunks(t, b) {
			want[k] = v
		}
	}
	sqlDB, err := db.DB()
	require.NoError(t, err)
	live, err := outbox.LiveTable(context.Background(), sqlDB, "emb_books_vec")
	require.NoError(t, err)
	rows, err := sqlDB.Query(`SELECT rowid, embedding, chunk_start, chunk_end, lang FROM ` + outbox.Quote(live))
	require.NoError(t, err)
	got := map[int64]string{}
	for rows.Next() {
		var id, s, e int64
		var v []byte
		var lang string
		require.NoError(t, rows.Scan(&id, &v, &s, &e, &lang))
		got[id] = fmt.Sprintf("%x|%d|%d|%s", v, s, e, lang)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	require.Equal(t, want, got)
}

func TestEmbedChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &embBook{}))
	ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)))
	require.NoError(t, err)
	defer ix.Close()

	books := []embBook{
		{Title: "Volcanoes", Text: "lava flows down the mountain while ash clouds rise over the island village", Lang: "en"},
		{Title: "Bread", Text: "flour water salt and yeast make a simple loaf baked in a hot oven", Lang: "en"},
		{Title: "Kurz", Text: "ein Satz", Lang: "de"},
		{Title: "", Text: "", Lang: "xx"},
	}
	require.NoError(t, db.Create(&books).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkBooks(t, db)
	st, err := ix.Status(ctx)
	require.NoError(t, err)
	require.Zero(t, st.EmbedQueued)

	// KNN by the text of one chunk of the first book: that book first, with
	// that chunk's span; every book at most once.
	text := outbox.EmbedText([]any{books[0].Title, books[0].Text})
	ch, _ := vecsink.NewChunker(24, 6)
	parts := ch.Split(text)
	require.Greater(t, len(parts), 2)
	target := parts[2]
	q, _ := vecsink.HashEmbedder(embDim).Embed(ctx, []string{target.Text})
	res, err := vecsink.KNN[embBook](ctx, db, q[0], 10)
	require.NoError(t, err)
	require.Len(t, res, 3, "three books have text, each returned once")
	require.Equal(t, books[0].ID, res[0].Model.ID)
	require.NotNil(t, res[0].Chunk)
	require.Equal(t, vecsink.ChunkSpan{Index: 2, Start: target.Start, End: target.End}, *res[0].Chunk)
	require.InDelta(t, 0, res[0].Distance, 1e-5)
	require.Equal(t, target.Text, text[res[0].Chunk.Start:res[0].Chunk.End])
	seen := map[int64]bool{}
	for _, r := range res {
		require.False(t, seen[r.Model.ID], "book %d returned twice", r.Model.ID)
		seen[r.Model.ID] = true
	}
	// Filters on metadata apply to chunks.
	res, err = vecsink.KNN[embBook](ctx, db, q[0], 10, vecsink.WithFilter("lang = ?", "de"))
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, books[2].ID, res[0].Model.ID)
	// KNNSQL returns the span columns.
	sqlText, _, err := vecsink.KNNSQL[embBook](ctx, db, q[0], 3)
	require.NoError(t, err)
	require.Contains(t, sqlText, "chunk_index")

	// Edit (fewer chunks), metadata change, soft delete, hard delete: every
	// chunk follows.
	require.NoError(t, db.Model(&books[0]).Update("text", "short now").Error)
	require.NoError(t, db.Model(&books[1]).Update("lang", "fr").Error)
	books[1].Lang = "fr"
	require.NoError(t, db.Delete(&books[2]).Error) // soft
	require.NoError(t, db.Unscoped().Delete(&books[1]).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkBooks(t, db)

	// A rebuild keeps the chunks without embedding again.
	before, _ := ix.EmbedStatus()
	require.NoError(t, ix.Rebuild(ctx, "emb_books"))
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkBooks(t, db)
	after, _ := ix.EmbedStatus()
	require.Equal(t, before.Texts, after.Texts, "the rebuild reused the stored chunks")

	// A text with more chunks than allowed is parked, never truncated.
	long := embBook{Title: "long", Text: strings.Repeat("word ", 24*outbox.MaxChunks/4), Lang: "en"}
	require.NoError(t, db.Create(&long).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	dls, err := ix.DeadLetters(ctx)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.Equal(t, long.ID, dls[0].Key)
	require.Contains(t, dls[0].Error, "not truncated")
	require.NoError(t, db.Model(&long).Update("text", "fits").Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkBooks(t, db)
	dls, err = ix.DeadLetters(ctx)
	require.NoError(t, err)
	require.Empty(t, dls)
}

type mixPlain struct {
	ID        int64
	Body      string            `fts5:""`
	Embedding vecsink.Embedding `vec:"dim=2"`
}

// A table with derived vectors rebuilds offline (see indexer.Rebuild) in
// the transaction that starts the online rebuild of the plain one, which
// goes to its next generation: both exact, no rebuild left in progress.
func TestRebuildMixedDerivedAndPlain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	require.NoError(t, db.Use(gormplugin.New()))
	require.NoError(t, gormplugin.Migrate(db, &embBook{}, &mixPlain{}))
	ix, err := indexer.New(db, indexer.WithEmbedder(vecsink.HashEmbedder(embDim)))
	require.NoError(t, err)
	defer ix.Close()

	books := []embBook{
		{Title: "Volcanoes", Text: "lava flows down the mountain while ash clouds rise over the island village", Lang: "en"},
		{Title: "Kurz", Text: "ein Satz", Lang: "de"},
	}
	require.NoError(t, db.Create(&books).Error)
	plains := make([]mixPlain, 50)
	for i := range plains {
		plains[i] = mixPlain{Body: fmt.Sprintf("row %d", i), Embedding: vecsink.Embedding{1, float32(i)}}
	}
	require.NoError(t, db.CreateInBatches(plains, 20).Error)
	_, err = ix.Drain(ctx)
	require.NoError(t, err)

	require.NoError(t, ix.Rebuild(ctx))
	_, err = ix.Drain(ctx)
	require.NoError(t, err)
	checkBooks(t, db)

	sqlDB, err := db.DB()
	require.NoError(t, err)
	live, err := outbox.LiveTable(ctx, sqlDB, "mix_plains_vec")
	require.NoError(t, err)
	require.Equal(t, "mix_plains_vec__g1", live)
	var n int
	require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM `+outbox.Quote(live)).Scan(&n))
	require.Equal(t, len(plains), n)
	live, err = outbox.LiveTable(ctx, sqlDB, "emb_books_vec")
	require.NoError(t, err)
	require.Equal(t, "emb_books_vec__g1", live, "the derived table was rebuilt online too")
	require.NoError(t, sqlDB.QueryRow(`SELECT count(*) FROM oi_rebuild`).Scan(&n))
	require.Zero(t, n)

	got, err := vecsink.KNN[mixPlain](ctx, db, []float32{1, 7}, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, int64(8), got[0].Model.ID) // plains[7], ids from 1
}
