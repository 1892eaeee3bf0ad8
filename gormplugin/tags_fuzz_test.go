package gormplugin

import (
	"errors"
	"strings"
	"testing"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// The seed corpora live in testdata/fuzz/Fuzz*/.

func FuzzParseVecTag(f *testing.F) {
	f.Add("dim=384;metric=cosine")
	f.Add("dim=8;metric=cosine;from=Title,Body;chunk=200;overlap=20;metadata=lang")
	f.Fuzz(func(t *testing.T, tag string) {
		v, err := parseVecTag(tag)
		if err != nil {
			var ke *keyError
			if !errors.As(err, &ke) || !strings.HasPrefix(ke.Error(), "vec tag") {
				t.Fatalf("error %v is not a key error", err)
			}
			return
		}
		spec := &outbox.Spec{Version: outbox.SpecVersion, Source: "src", Key: "id", KeyType: outbox.KeyInteger, SoftDelete: "deleted_at",
			Vec: &outbox.VecSpec{Table: v.Table, Column: v.Column, Dim: v.Dim, Metric: v.Metric, Encoding: v.Encoding,
				From: v.From, Chunk: v.Chunk, Overlap: v.Overlap, Embedder: v.Embedder}}
		if spec.Vec.Table == "" {
			spec.Vec.Table = "src_vec"
		}
		if spec.Vec.Column == "" {
			spec.Vec.Column = "embedding"
		}
		for _, m := range v.Metadata {
			if m == spec.Vec.Column || m == outbox.DeletedColumn {
				return // rejected by the model parser, which knows the column set
			}
			spec.Vec.Metadata = append(spec.Vec.Metadata, outbox.MetaCol{Name: m, Type: "text"})
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("tag %q parsed to an invalid spec: %v", tag, err)
		}
		q, err := vecsink.CreateSQL(spec)
		if err != nil || strings.Count(q, ";") != 0 {
			t.Fatalf("tag %q: DDL %q: %v", tag, q, err)
		}
	})
}

func FuzzParseFTSTag(f *testing.F) {
	f.Add("tokenize=porter+unicode61;prefix=2,3")
	f.Fuzz(func(t *testing.T, tag string) {
		v, err := parseFTSTag(tag)
		if err != nil {
			var ke *keyError
			if !errors.As(err, &ke) || !strings.HasPrefix(ke.Error(), "fts5 tag") {
				t.Fatalf("error %v is not a key error", err)
			}
			return
		}
		mode := outbox.ModeExternal
		switch {
		case v.Contentless:
			mode = outbox.ModeContentless
		case v.set["external"] == "false":
			mode = outbox.ModeInTable
		}
		col := v.Column
		if col == "" {
			col = "body"
		}
		if mode == outbox.ModeExternal && col != "body" {
			mode = outbox.ModeInTable // the model parser reports this combination
		}
		if col == outbox.DeletedColumn || col == "deleted_at" {
			return // reserved: rejected by the model parser
		}
		spec := &outbox.Spec{Version: outbox.SpecVersion, Source: "src", Key: "id", KeyType: outbox.KeyInteger, SoftDelete: "deleted_at",
			FTS: &outbox.FTSSpec{Table: v.Table, Mode: mode, Tokenize: v.Tokenize, Prefix: v.Prefix, Detail: v.Detail,
				Columns: []outbox.FTSCol{{Name: col, Source: "body"}}}}
		if spec.FTS.Table == "" {
			spec.FTS.Table = "src_fts"
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("tag %q parsed to an invalid spec: %v", tag, err)
		}
		if _, err := ftssink.CreateSQL(spec); err != nil {
			t.Fatalf("tag %q: %v", tag, err)
		}
		if strings.ContainsAny(v.Tokenize, "\x00\n\r\t") {
			t.Fatalf("tag %q: tokenize %q has control characters", tag, v.Tokenize)
		}
	})
}

// FuzzMergeFTSTags checks the merge of the fts5 tags of two fields that
// share one FTS5 table: it succeeds or fails whatever the field order, a
// failure names the other field, a success agrees with both tags on every
// table-level key and on the mode, and a tag always agrees with itself.
func FuzzMergeFTSTags(f *testing.F) {
	f.Add("external=true", "contentless=true")
	f.Add("tokenize=porter;prefix=2,3", "prefix=3,2;detail=column")
	f.Add("table=A_fts;external=false", "table=a_fts;contentless=false")
	f.Add("contentless=true;external=false", "external=false")
	f.Fuzz(func(t *testing.T, tagA, tagB string) {
		a, errA := parseFTSTag(tagA)
		b, errB := parseFTSTag(tagB)
		if errA != nil || errB != nil {
			return
		}
		self := newFTSMerge()
		if err := self.add("FieldOne", a); err != nil {
			t.Fatalf("tag %q conflicts with nothing: %v", tagA, err)
		}
		if err := self.add("FieldTwo", a); err != nil {
			t.Fatalf("tag %q conflicts with itself: %v", tagA, err)
		}
		ab, ba := newFTSMerge(), newFTSMerge()
		if err := ab.add("FieldOne", a); err != nil {
			t.Fatal(err)
		}
		if err := ba.add("FieldTwo", b); err != nil {
			t.Fatal(err)
		}
		errAB, errBA := ab.add("FieldTwo", b), ba.add("FieldOne", a)
		if (errAB == nil) != (errBA == nil) {
			t.Fatalf("tags %q, %q: the merge depends on the field order: %v / %v", tagA, tagB, errAB, errBA)
		}
		if errAB != nil {
			if !strings.Contains(errAB.Error(), "field FieldOne") || !strings.Contains(errBA.Error(), "field FieldTwo") {
				t.Fatalf("tags %q, %q: the conflict does not name the other field: %v / %v", tagA, tagB, errAB, errBA)
			}
			return
		}
		for _, k := range ftsTableKeys {
			va, okA := a.set[k]
			vb, okB := b.set[k]
			if okA && okB && va != vb {
				t.Fatalf("tags %q, %q: merged although key %s differs (%q, %q)", tagA, tagB, k, va, vb)
			}
			want, ok := va, okA
			if !ok {
				want, ok = vb, okB
			}
			got, gotOK := ab.tag.set[k]
			if ok != gotOK || got != want || canonical(k, ab.tag) != canonical(k, ba.tag) {
				t.Fatalf("tags %q, %q: merged key %s is %q (%v), want %q (%v); other order %q", tagA, tagB, k, got, gotOK, want, ok, canonical(k, ba.tag))
			}
		}
		ma, _ := declaredMode(a)
		mb, _ := declaredMode(b)
		if ma != "" && mb != "" && ma != mb {
			t.Fatalf("tags %q, %q: merged although the modes differ (%s, %s)", tagA, tagB, ma, mb)
		}
		if ab.mode != ba.mode || (ab.mode == "" && (ma != "" || mb != "")) {
			t.Fatalf("tags %q, %q: merged mode %q / %q", tagA, tagB, ab.mode, ba.mode)
		}
	})
}
