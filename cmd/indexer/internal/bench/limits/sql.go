package limits

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// SourceDDL creates the plain source table as gorm migrates
// bench.PlainDoc.
const SourceDDL = "CREATE TABLE IF NOT EXISTS `plain_docs` (`id` integer PRIMARY KEY AUTOINCREMENT,`title` text,`body` text)"

// SidecarDDL creates the sidecars of plain_docs: external-content FTS5
// (porter) and a 384-d cosine vec0.
var SidecarDDL = []string{
	`CREATE VIRTUAL TABLE plain_docs_fts USING fts5(title, body, content='plain_docs', content_rowid='id', tokenize='porter unicode61')`,
	fmt.Sprintf(`CREATE VIRTUAL TABLE plain_docs_vec USING vec0(embedding float[%d] distance_metric=cosine)`, Dim),
}

// BlobDDL creates the table of InsertEach: a document with its vector as a
// BLOB column, as gorm migrates bench.BlobDoc.
const BlobDDL = "CREATE TABLE IF NOT EXISTS `blob_docs` (`id` integer PRIMARY KEY AUTOINCREMENT,`title` text,`body` text,`views` integer,`embedding` blob)"

// Exec runs statements, stopping at the first error.
func Exec(ctx context.Context, db *sql.DB, stmts ...string) error {
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("limits: %s: %w", q, err)
		}
	}
	return nil
}

// inTx runs fn in one transaction of db.
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// LoadSource creates plain_docs if needed and inserts docs with ids 1…n,
// 500 rows per statement, in one transaction.
func LoadSource(ctx context.Context, db *sql.DB, docs []Doc) error {
	if err := Exec(ctx, db, SourceDDL); err != nil {
		return err
	}
	return inTx(ctx, db, func(tx *sql.Tx) error {
		const per = 500
		for i := 0; i < len(docs); i += per {
			end := min(i+per, len(docs))
			var sb strings.Builder
			args := make([]any, 0, 3*(end-i))
			sb.WriteString("INSERT INTO plain_docs (id, title, body) VALUES ")
			for j := i; j < end; j++ {
				if j > i {
					sb.WriteByte(',')
				}
				sb.WriteString("(?,?,?)")
				args = append(args, j+1, docs[j].Title, docs[j].Body)
			}
			if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
				return fmt.Errorf("limits: load plain_docs: %w", err)
			}
		}
		return nil
	})
}

// Prepare loads docs into plain_docs (LoadSource) and creates the empty
// sidecars.
func Prepare(ctx context.Context, db *sql.DB, docs []Doc) error {
	if err := LoadSource(ctx, db, docs); err != nil {
		return err
	}
	return Exec(ctx, db, SidecarDDL...)
}

// Index inserts docs (ids 1…n of plain_docs) into both sidecars with
// statements prepared once per transaction of batch rows: the raw limit of
// applying inserts.
func Index(ctx context.Context, db *sql.DB, docs []Doc, batch int) error {
	for i := 0; i < len(docs); i += batch {
		err := inTx(ctx, db, func(tx *sql.Tx) error {
			vs, err := tx.PrepareContext(ctx, `INSERT INTO plain_docs_vec(rowid, embedding) VALUES (?, ?)`)
			if err != nil {
				return err
			}
			defer vs.Close()
			fs, err := tx.PrepareContext(ctx, `INSERT INTO plain_docs_fts(rowid, title, body) VALUES (?, ?, ?)`)
			if err != nil {
				return err
			}
			defer fs.Close()
			for j := i; j < min(i+batch, len(docs)); j++ {
				if _, err := vs.ExecContext(ctx, j+1, docs[j].VecBytes); err != nil {
					return err
				}
				if _, err := fs.ExecContext(ctx, j+1, docs[j].Title, docs[j].Body); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("limits: index rows %d…: %w", i+1, err)
		}
	}
	return nil
}

// Rebuild fills both sidecars from scratch in one transaction: FTS5's own
// 'rebuild' from plain_docs and prepared vec0 inserts of docs.
func Rebuild(ctx context.Context, db *sql.DB, docs []Doc) error {
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO plain_docs_fts(plain_docs_fts) VALUES('rebuild')`); err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO plain_docs_vec(rowid, embedding) VALUES (?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for j, d := range docs {
			if _, err := st.ExecContext(ctx, j+1, d.VecBytes); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("limits: rebuild: %w", err)
	}
	return nil
}

// InsertEach writes each doc, vector included, as one row of blob_docs in
// its own transaction (BEGIN, INSERT, COMMIT) with a prepared statement:
// the engine's cost of one durable single-row write of those bytes.
func InsertEach(ctx context.Context, db *sql.DB, docs []Doc) error {
	st, err := db.PrepareContext(ctx, "INSERT INTO `blob_docs` (`title`,`body`,`views`,`embedding`) VALUES (?,?,?,?)")
	if err != nil {
		return fmt.Errorf("limits: prepare: %w", err)
	}
	defer st.Close()
	for i, d := range docs {
		err := inTx(ctx, db, func(tx *sql.Tx) error {
			_, err := tx.StmtContext(ctx, st).ExecContext(ctx, d.Title, d.Body, 0, d.VecBytes)
			return err
		})
		if err != nil {
			return fmt.Errorf("limits: insert row %d: %w", i+1, err)
		}
	}
	return nil
}

// KNN returns the ids of the k nearest neighbours of vec (little-endian
// float32) in plain_docs_vec.
func KNN(ctx context.Context, db *sql.DB, vec []byte, k int) ([]int64, error) {
	return ids(ctx, db, `SELECT rowid, distance FROM plain_docs_vec WHERE embedding MATCH ? AND k = ?`, vec, k)
}

// Search returns the ids of the k best bm25 matches of term in
// plain_docs_fts.
func Search(ctx context.Context, db *sql.DB, term string, k int) ([]int64, error) {
	return ids(ctx, db, `SELECT rowid, bm25(plain_docs_fts) FROM plain_docs_fts WHERE plain_docs_fts MATCH ? ORDER BY bm25(plain_docs_fts), rowid LIMIT ?`, `"`+term+`"`, k)
}

func ids(ctx context.Context, db *sql.DB, q string, args ...any) ([]int64, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("limits: query: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		var score float64
		if err := rows.Scan(&id, &score); err != nil {
			return nil, fmt.Errorf("limits: query: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("limits: query: %w", err)
	}
	return out, nil
}
