package vecsink

import (
	"database/sql/driver"
	"fmt"

	"github.com/outboxindexer/outboxindexer/outbox"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// Embedding is the type of a model's vector field:
//
//	Embedding vecsink.Embedding `vec:"dim=384;metric=cosine"`
//
// The source table never gets a column for it: the gorm plugin keeps it out of
// the SQL and carries the vector in the outbox event, and the indexer stores it
// in the vec0 sidecar. A nil or empty Embedding means "this row has no vector".
type Embedding []float32

// GormDataType tells gorm's schema parser the field's type. The plugin marks
// the field as not migrated, not read and not written.
func (Embedding) GormDataType() string { return "blob" }

// GormDBDataType is used only if the field is migrated by mistake (no plugin).
func (Embedding) GormDBDataType(*gorm.DB, *schema.Field) string { return "blob" }

// Value encodes the vector as little-endian float32, the form vec0 accepts. It
// exists so that gorm accepts the type; with the plugin installed the value
// never reaches the source table.
func (e Embedding) Value() (driver.Value, error) {
	if len(e) == 0 {
		return nil, nil
	}
	b, err := outbox.EncodeVector(e, len(e), outbox.EncodingBinary)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Scan decodes a little-endian float32 BLOB or a JSON array.
func (e *Embedding) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*e = nil
		return nil
	case []byte:
		f, err := outbox.DecodeVector(v)
		*e = f
		return err
	case string:
		f, err := outbox.DecodeVector([]byte(v))
		*e = f
		return err
	default:
		return fmt.Errorf("vecsink: cannot scan %T into Embedding", src)
	}
}

var _ interface {
	driver.Valuer
	schema.GormDataTypeInterface
} = Embedding(nil)
