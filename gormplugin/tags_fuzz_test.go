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
			Vec: &outbox.VecSpec{Table: v.Table, Column: v.Column, Dim: v.Dim, Metric: v.Metric, Encoding: v.Encoding}}
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
