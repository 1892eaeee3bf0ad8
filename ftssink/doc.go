// Package ftssink owns the FTS5 sidecar of an indexed model: its DDL in the
// three modes (external content, in-table, contentless), how the indexer
// applies changes to it, a query builder that never yields an FTS5 syntax
// error, and ranked full-text search that returns gorm models.
package ftssink
