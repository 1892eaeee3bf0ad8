package indexer

import "time"

// SetLargeMerge scales merge.go's largeMerge and mergeQuiet down for a
// test: merges whose input exceeds pages leaf pages are large, and wait
// for the sidecar to go unwritten for quiet. Call it before using ix.
func SetLargeMerge(ix *Indexer, pages int, quiet time.Duration) {
	ix.cfg.largeMerge, ix.cfg.mergeQuiet = pages, quiet
}
