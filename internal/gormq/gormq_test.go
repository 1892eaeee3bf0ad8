package gormq_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/outboxindexer/outboxindexer/internal/gormq"
	"github.com/outboxindexer/outboxindexer/internal/testdb"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

type code string

type byCode struct {
	Code code `gorm:"primaryKey"`
	Name string
}

type byUint struct {
	ID   uint16
	Name string
}

type composite struct {
	A int `gorm:"primaryKey"`
	B int `gorm:"primaryKey"`
}

func register(t *testing.T, db *gorm.DB, table, key, keyType string) {
	t.Helper()
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, outbox.EnsureSchema(context.Background(), sqlDB))
	require.NoError(t, outbox.SaveSpec(context.Background(), sqlDB, &outbox.Spec{
		Version: outbox.SpecVersion, Source: table, Key: key, KeyType: keyType,
		Vec: &outbox.VecSpec{Table: table + "_vec", Column: "embedding", Dim: 2, Metric: outbox.MetricL2, Encoding: outbox.EncodingBinary},
	}))
}

func TestResolveAndLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	require.NoError(t, db.AutoMigrate(&byCode{}, &byUint{}, &composite{}))
	register(t, db, "by_codes", "code", outbox.KeyText)
	register(t, db, "by_uints", "id", outbox.KeyInteger)

	require.NoError(t, db.Create(&[]byCode{{"b", "B"}, {"a", "A"}, {"007", "seven"}}).Error)
	tg, err := gormq.Resolve(ctx, db, new(byCode))
	require.NoError(t, err)
	require.Equal(t, "by_codes", tg.Table)
	models, ok, err := gormq.Load[byCode](ctx, db, tg, []any{"007", "gone", "a", "b"}, false)
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true, true}, ok)
	require.Equal(t, []string{"seven", "", "A", "B"}, []string{models[0].Name, models[1].Name, models[2].Name, models[3].Name})

	require.NoError(t, db.Create(&[]byUint{{ID: 7, Name: "x"}, {ID: 3, Name: "y"}}).Error)
	tu, err := gormq.Resolve(ctx, db, new(byUint))
	require.NoError(t, err)
	ptrs, ok, err := gormq.Load[*byUint](ctx, db, tu, []any{int64(3), int64(7)}, false)
	require.NoError(t, err)
	require.Equal(t, []bool{true, true}, ok)
	require.Equal(t, "y", ptrs[0].Name)
	require.Equal(t, "x", ptrs[1].Name)
	k, err := gormq.KeyOf(ctx, tu.Key, reflect.ValueOf(ptrs[1]))
	require.NoError(t, err)
	require.Equal(t, int64(7), k)

	// the model's key type or column disagrees with the registry
	_, err = gormq.Resolve(ctx, db.Table("by_uints"), new(byCode))
	require.ErrorIs(t, err, outbox.ErrBadSpec)
	register(t, db, "by_codes", "name", outbox.KeyText)
	_, err = gormq.Resolve(ctx, db, new(byCode))
	require.ErrorIs(t, err, outbox.ErrBadSpec)
	require.ErrorContains(t, err, `"name"`)
	_, err = gormq.Resolve(ctx, db, new(composite))
	require.ErrorIs(t, err, outbox.ErrBadSpec)
	require.ErrorContains(t, err, "2 primary key fields")
	_, err = gormq.Resolve(ctx, db, new(int))
	require.Error(t, err)
}

// Resolve parses a registry row once and reuses it, yet always sees the
// registry as it is now: a changed row gives the new spec, a removed one
// outbox.ErrNotRegistered.
func TestResolveFollowsRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	require.NoError(t, db.AutoMigrate(&byUint{}))
	register(t, db, "by_uints", "id", outbox.KeyInteger)
	a, err := gormq.Resolve(ctx, db, new(byUint))
	require.NoError(t, err)
	b, err := gormq.Resolve(ctx, db, new(byUint))
	require.NoError(t, err)
	require.Same(t, a.Spec, b.Spec)
	require.NoError(t, db.Exec(`UPDATE oi_registry SET spec = json_set(spec, '$.vec.dim', 3) WHERE source = 'by_uints'`).Error)
	c, err := gormq.Resolve(ctx, db, new(byUint))
	require.NoError(t, err)
	require.Equal(t, 3, c.Spec.Vec.Dim)
	require.Equal(t, 2, a.Spec.Vec.Dim)
	require.NoError(t, db.Exec(`DELETE FROM oi_registry WHERE source = 'by_uints'`).Error)
	_, err = gormq.Resolve(ctx, db, new(byUint))
	require.ErrorIs(t, err, outbox.ErrNotRegistered)
}
