package gormplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/ftssink"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
	"gorm.io/gorm"
)

// Migrate prepares models for indexing, in one transaction: it
// auto-migrates their source tables (the vector field never becomes a
// column), creates the outbox tables, creates the vec0 and FTS5 sidecars of
// tagged models and stores each model's spec in the registry (oi_registry),
// where the indexer and the standalone binary read it.
//
// Untagged models may be passed too: they are only auto-migrated. Running
// Migrate again with the same tags changes nothing. If a model's tags no
// longer match its registry entry, Migrate returns an error wrapping
// ErrSpecChanged that says what changed; see UpdateSpec.
//
// The capture plugin must be installed on db first (db.Use(New())):
// without it no write would be recorded and the sidecars would silently stay
// empty, so Migrate returns ErrPluginNotInstalled and changes nothing.
func Migrate(db *gorm.DB, models ...any) error {
	return migrate(db, false, models)
}

// UpdateSpec is Migrate for models whose tags changed on purpose (say a new
// metric or tokenizer). For each model whose spec differs from its registry
// entry it drops the sidecars whose part of the spec changed, creates them
// again, empty, from the new tags, and records the new spec — all in one
// transaction. Events are kept: the retained log still holds every live
// row's latest vector. Then rebuild the table's sidecars with the indexer:
// indexer Rebuild(ctx, "table"), or `indexer rebuild --table table`. Until
// the rebuild, queries see the new, partly filled sidecars. Like Migrate, it
// returns ErrPluginNotInstalled when db has not installed the plugin.
func UpdateSpec(db *gorm.DB, models ...any) error {
	return migrate(db, true, models)
}

func migrate(db *gorm.DB, update bool, values []any) error {
	if db == nil {
		return fmt.Errorf("gormplugin: Migrate: db is nil")
	}
	p := pluginOf(db)
	if p == nil {
		return ErrPluginNotInstalled
	}
	ms := p.models
	var indexed []*model
	for _, v := range values {
		if _, isName := v.(string); isName {
			return fmt.Errorf("gormplugin: Migrate needs model values, not table name %q", v)
		}
		m, err := ms.parseModel(db, v)
		if err != nil {
			return err
		}
		if !m.indexed {
			continue
		}
		if m.err != nil {
			return m.err
		}
		indexed = append(indexed, m)
	}
	seen := map[any]bool{}
	for _, m := range indexed {
		p.prepareSchema(m.schema, seen)
	}
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		if len(values) > 0 {
			if err := tx.Migrator().AutoMigrate(values...); err != nil {
				return fmt.Errorf("gormplugin: auto-migrate: %w", err)
			}
		}
		conn := tx.Statement.ConnPool
		if err := outbox.EnsureSchema(ctx, conn); err != nil {
			return err
		}
		for _, m := range indexed {
			if err := migrateModel(ctx, conn, m, update); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range indexed {
		m.dropped.Store(false)
	}
	return nil
}

func migrateModel(ctx context.Context, conn outbox.DB, m *model, update bool) error {
	spec := m.spec
	old, err := outbox.LoadSpec(ctx, conn, spec.Source)
	switch {
	case errors.Is(err, outbox.ErrNotRegistered):
		if err := createSidecars(ctx, conn, spec, true, true); err != nil {
			return err
		}
		if err := outbox.SaveSpec(ctx, conn, spec); err != nil {
			return err
		}
		// Rows that exist before the table is indexed are queued for the
		// indexer, which indexes them in bounded steps.
		var rows int
		if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+outbox.Quote(spec.Source)+`)`).Scan(&rows); err != nil {
			return fmt.Errorf("gormplugin: migrate %s: %w", spec.Source, err)
		}
		if rows == 1 {
			return outbox.QueueBackfill(ctx, conn, spec.Source)
		}
		return nil
	case err != nil:
		return fmt.Errorf("gormplugin: migrate %s: %w", spec.Source, err)
	case old.Equal(spec):
		// gorm's SQLite migrator recreates a table to alter it, which drops
		// its triggers: put them back.
		return outbox.CreateTriggers(ctx, conn, spec)
	}
	changes := specDiff(old, spec)
	if !update {
		return fmt.Errorf("%w: table %s: %s; if this is intended, record the new spec with gormplugin.UpdateSpec(db, &%s{}) and then rebuild the sidecars with indexer Rebuild (indexer rebuild --table %s)",
			ErrSpecChanged, spec.Source, strings.Join(changes, "; "), spec.Model, spec.Source)
	}
	vecChanged, ftsChanged := partsChanged(old, spec)
	// An online rebuild of the old spec is of no use any more: its tables
	// go. The sidecars that keep their spec keep their live generation.
	if err := outbox.DiscardRebuild(ctx, conn, spec.Source); err != nil {
		return err
	}
	spec = keepGenerations(old, spec, vecChanged, ftsChanged)
	if vecChanged {
		if err := vecsink.Drop(ctx, conn, old); err != nil {
			return err
		}
	}
	if ftsChanged {
		if err := ftssink.Drop(ctx, conn, old); err != nil {
			return err
		}
		if old.FTS != nil && old.KeyType == outbox.KeyText {
			// FTS5 rowids of text keys are reassigned by the rebuild.
			if _, err := conn.ExecContext(ctx, `DELETE FROM oi_keymap WHERE tbl = ?`, spec.Source); err != nil {
				return fmt.Errorf("gormplugin: reset key map of %s: %w", spec.Source, err)
			}
		}
	}
	if err := createSidecars(ctx, conn, spec, vecChanged, ftsChanged); err != nil {
		return err
	}
	return outbox.SaveSpec(ctx, conn, spec)
}

// keepGenerations returns spec with the live generations of old for the
// sidecars whose part of the spec did not change (see outbox.GenName): the
// registry must keep naming the tables that hold their data.
func keepGenerations(old, spec *outbox.Spec, vecChanged, ftsChanged bool) *outbox.Spec {
	c := *spec
	if !vecChanged && spec.Vec != nil && old.Vec != nil {
		v := *spec.Vec
		v.Gen = old.Vec.Gen
		c.Vec = &v
		c.MoreVecs = append([]outbox.VecSpec(nil), spec.MoreVecs...)
		for i := range c.MoreVecs {
			if i < len(old.MoreVecs) {
				c.MoreVecs[i].Gen = old.MoreVecs[i].Gen
			}
		}
	}
	if !ftsChanged && spec.FTS != nil && old.FTS != nil {
		f := *spec.FTS
		f.Gen = old.FTS.Gen
		c.FTS = &f
	}
	return &c
}

func createSidecars(ctx context.Context, conn outbox.DB, spec *outbox.Spec, vec, fts bool) error {
	if vec && spec.Vec != nil {
		if err := vecsink.Create(ctx, conn, spec); err != nil {
			return fmt.Errorf("gormplugin: model %s: %w", spec.Model, err)
		}
	}
	if fts && spec.FTS != nil {
		if err := ftssink.Create(ctx, conn, spec); err != nil {
			return fmt.Errorf("gormplugin: model %s (check the fts5 tag's tokenize): %w", spec.Model, err)
		}
	}
	return nil
}

// partsChanged reports which sidecars a spec change invalidates.
func partsChanged(a, b *outbox.Spec) (vec, fts bool) {
	common := a.Key != b.Key || a.KeyType != b.KeyType || a.SoftDelete != b.SoftDelete || a.Source != b.Source
	na, nb := stripInfo(a), stripInfo(b)
	vec = common || !sameJSON(na.Vec, nb.Vec) || !sameJSON(na.MoreVecs, nb.MoreVecs)
	fts = common || !sameJSON(na.FTS, nb.FTS)
	return vec, fts
}

func stripInfo(s *outbox.Spec) *outbox.Spec {
	c := *s
	c.Model = ""
	if s.Vec != nil {
		v := *s.Vec
		v.Field, v.Gen = "", 0
		c.Vec = &v
	}
	if s.MoreVecs != nil {
		c.MoreVecs = append([]outbox.VecSpec(nil), s.MoreVecs...)
		for i := range c.MoreVecs {
			c.MoreVecs[i].Field, c.MoreVecs[i].Gen = "", 0
		}
	}
	if s.FTS != nil {
		f := *s.FTS
		f.Gen = 0
		f.Columns = append([]outbox.FTSCol(nil), f.Columns...)
		for i := range f.Columns {
			f.Columns[i].Field = ""
		}
		c.FTS = &f
	}
	return &c
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// specDiff describes what changed between a stored and a new spec.
func specDiff(a, b *outbox.Spec) []string {
	var out []string
	add := func(what string, x, y any) {
		if !sameJSON(x, y) {
			out = append(out, fmt.Sprintf("%s %s → %s", what, show(x), show(y)))
		}
	}
	add("key", a.Key, b.Key)
	add("key type", a.KeyType, b.KeyType)
	add("soft-delete column", a.SoftDelete, b.SoftDelete)
	switch {
	case a.Vec == nil && b.Vec != nil:
		out = append(out, "vec sidecar added")
	case a.Vec != nil && b.Vec == nil:
		out = append(out, "vec sidecar removed")
	case a.Vec != nil:
		add("vec table", a.Vec.Table, b.Vec.Table)
		add("vec column", a.Vec.Column, b.Vec.Column)
		add("vec dim", a.Vec.Dim, b.Vec.Dim)
		add("vec metric", a.Vec.Metric, b.Vec.Metric)
		add("vec encoding", a.Vec.Encoding, b.Vec.Encoding)
		add("vec metadata", a.Vec.Metadata, b.Vec.Metadata)
		add("further vector fields", stripInfo(a).MoreVecs, stripInfo(b).MoreVecs)
	}
	switch {
	case a.FTS == nil && b.FTS != nil:
		out = append(out, "fts5 sidecar added")
	case a.FTS != nil && b.FTS == nil:
		out = append(out, "fts5 sidecar removed")
	case a.FTS != nil:
		add("fts5 table", a.FTS.Table, b.FTS.Table)
		add("fts5 mode", a.FTS.Mode, b.FTS.Mode)
		add("fts5 tokenize", a.FTS.Tokenize, b.FTS.Tokenize)
		add("fts5 prefix", a.FTS.Prefix, b.FTS.Prefix)
		add("fts5 detail", a.FTS.Detail, b.FTS.Detail)
		add("fts5 columns", stripInfo(a).FTS.Columns, stripInfo(b).FTS.Columns)
	}
	if len(out) == 0 {
		out = append(out, "spec differs")
	}
	return out
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
