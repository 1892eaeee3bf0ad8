package indexer

// SetLargeMerge scales merge.go's largeMerge down for a test: merges whose
// input exceeds pages leaf pages are large. Call it before using ix.
func SetLargeMerge(ix *Indexer, pages int) { ix.cfg.largeMerge = pages }
