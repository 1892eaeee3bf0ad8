package indexer

// SetLargeMerge scales merge.go's largeMerge down for a test: merges whose
// input exceeds pages leaf pages are large. Call it before using ix.
func SetLargeMerge(ix *Indexer, pages int) { ix.cfg.largeMerge = pages }

// SetColdDrop sets how many times its budget a drop step may spend
// deleting before the drop reads ahead (0: after the first step).
func SetColdDrop(ix *Indexer, n int) { ix.cfg.coldDrop = n }

// SetSideMaxSegments sets how many FTS5 segments a side file's index may
// hold before a side step merges instead of copying.
func SetSideMaxSegments(ix *Indexer, n int) { ix.cfg.sideMaxSegments = n }

// SetSideChunk fixes the rows each side step copies (0: tuned to the
// step's budget).
func SetSideChunk(ix *Indexer, rows int) { ix.cfg.sideChunk = rows }
