package vecsink

import (
	"errors"
	"fmt"
	"strings"

	"github.com/outboxindexer/outboxindexer/outbox"
)

var (
	// ErrAmbiguousField reports a KNN, KNNSQL or Neighbors on a model with
	// several vector fields and no WithField: the error names the fields.
	ErrAmbiguousField = errors.New("vecsink: model has several vector fields, pick one with WithField")
	// ErrUnknownField reports a WithField name that is none of the model's
	// vector fields: the error names it and the fields there are.
	ErrUnknownField = errors.New("vecsink: no such vector field")
)

// WithField picks the vector field a KNN, KNNSQL or Neighbors searches
// (hybrid.Search: through hybrid.WithVecOptions), for models with several
// vec-tagged fields, each with its own vec0 sidecar. name is the Go field
// name ("BodyEmb"), or the vec0 table name, or the vec0 column name when
// only one field has it (table and column case-insensitively). On a model
// with one vector field WithField is optional; naming that field is fine.
func WithField(name string) Option {
	return func(c *queryConfig) { c.field, c.fieldSet = name, true }
}

// fieldSpec returns the VecSpec that a query with cfg searches, or
// ErrAmbiguousField / ErrUnknownField / ErrInvalidOption.
func fieldSpec(spec *outbox.Spec, cfg *queryConfig) (*outbox.VecSpec, error) {
	vs := spec.VecSpecs()
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: table %s", ErrNoVec, spec.Source)
	}
	if !cfg.fieldSet {
		if len(vs) == 1 {
			return vs[0], nil
		}
		return nil, fmt.Errorf("%w: table %s has vector fields %s", ErrAmbiguousField, spec.Source, fieldNames(vs))
	}
	name := cfg.field
	if strings.TrimSpace(name) == "" {
		return nil, fmt.Errorf("%w: WithField(%q): empty field name (table %s has vector fields %s)", ErrInvalidOption, name, spec.Source, fieldNames(vs))
	}
	for _, v := range vs {
		if v.Field == name {
			return v, nil
		}
	}
	for _, v := range vs {
		if strings.EqualFold(v.Table, name) {
			return v, nil
		}
	}
	var byCol []*outbox.VecSpec
	for _, v := range vs {
		if strings.EqualFold(v.Column, name) {
			byCol = append(byCol, v)
		}
	}
	if len(byCol) == 1 {
		return byCol[0], nil
	}
	if len(byCol) > 1 {
		return nil, fmt.Errorf("%w: WithField(%q): column %q is the vector column of several fields of table %s (%s): name the Go field", ErrAmbiguousField, name, name, spec.Source, fieldNames(byCol))
	}
	return nil, fmt.Errorf("%w: WithField(%q): table %s has vector fields %s", ErrUnknownField, name, spec.Source, fieldNames(vs))
}

// fieldNames lists vector fields as `Go name (vec0 table)`.
func fieldNames(vs []*outbox.VecSpec) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if v.Field != "" {
			parts[i] = fmt.Sprintf("%s (%s)", v.Field, v.Table)
		} else {
			parts[i] = v.Table
		}
	}
	return strings.Join(parts, ", ")
}
