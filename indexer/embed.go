package indexer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outboxindexer/outboxindexer/internal/sqlutil"
	"github.com/outboxindexer/outboxindexer/outbox"
	"github.com/outboxindexer/outboxindexer/vecsink"
)

// Derived vectors (`vec:"…;from=Title,Body"`).
//
// The applier never calls the embedding service: for every change of a row
// it applies, it queues the key in oi_embed_queue (in its transaction), and
// forgets the key's text hash (oi_embed_state) when the change left it
// without a vector. An embedding round then
//
//  1. reads queued keys, their current text and their stored hashes, with
//     plain reads (no transaction holds the write lock);
//  2. embeds the texts whose hash differs from the stored one, outside any
//     transaction, through a vecsink.BatchEmbedder (batches, concurrency,
//     rate limit, retries with Retry-After, isolation of bad texts);
//  3. in one short write transaction, fenced by the lease, reads the text of
//     those keys again and, for each key whose text still hashes to what
//     was embedded, appends an OpVector event with the vector, records the
//     hash and removes the key from the queue; a key whose text changed
//     meanwhile stays queued and is embedded again by a later round.
//
// The applier applies the OpVector events like any others. A text that the
// service can never embed (HTTP 400 on it, a vector of the wrong dimension
// or with NaN) is parked as a dead letter with the provider's message, and
// its stale vector removed; the rest of the round proceeds. An outage (429,
// 5xx, timeouts, after the BatchEmbedder's retries) fails the round: the
// keys stay queued, and only the lag grows.

// embedding is the embedding stage of an Indexer.
type embedding struct {
	by    map[string]*namedEmbedder // by embedder= name; "" is the default
	stats vecsink.EmbedStats
	round int

	mu sync.Mutex // serializes writing rounds (embedStep)

	regMu sync.Mutex // guards reg: rounds are prepared concurrently
	reg   registry

	pmu     sync.Mutex    // guards pending
	pending []*embedRound // rounds being prepared in the background, in queue order (at most pipelineDepth)

	// ctx bounds background rounds; cancel is called by Close.
	ctx    context.Context
	cancel context.CancelFunc

	wakeCh chan struct{}

	embedded, unchanged, parked, rounds, failures atomic.Int64
}

// namedEmbedder is one embedder of the indexer.
type namedEmbedder struct {
	be *vecsink.BatchEmbedder
	id string // identifies the embedder in text hashes
}

func newEmbedding(cfg *config) (*embedding, error) {
	e := &embedding{by: map[string]*namedEmbedder{}, round: cfg.embedRound, wakeCh: make(chan struct{}, 1)}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for name, c := range cfg.embedders {
		opts := append(slices.Clone(c.opts), vecsink.WithObserver(&e.stats), vecsink.WithBatchLogger(cfg.logger.With("component", "embedder", "embedder", name)))
		be, err := vecsink.NewBatchEmbedder(c.e, opts...)
		if err != nil {
			return nil, fmt.Errorf("indexer: embedder %q: %w", name, err)
		}
		e.by[name] = &namedEmbedder{be: be, id: embedderID(c.e)}
	}
	return e, nil
}

// embedderID names an embedder in text hashes: a changed model changes
// every hash.
func embedderID(e vecsink.Embedder) string {
	type named interface {
		Provider() string
		Model() string
	}
	switch x := e.(type) {
	case named:
		return x.Provider() + "/" + x.Model()
	case vecsink.HashEmbedder:
		return fmt.Sprintf("hash/%d", x.Dim())
	default:
		return fmt.Sprintf("%T", e)
	}
}

// close cancels a round being prepared in the background and waits for it.
func (e *embedding) close() {
	if e == nil {
		return
	}
	e.cancel()
	e.pmu.Lock()
	ps := e.pending
	e.pending = nil
	e.pmu.Unlock()
	for _, p := range ps {
		<-p.done
	}
}

// wake makes the embedding loop of Run look at the queue at once.
func (e *embedding) wake() {
	if e == nil {
		return
	}
	select {
	case e.wakeCh <- struct{}{}:
	default:
	}
}

// EmbedStatus describes the embedding stage of an Indexer.
type EmbedStatus struct {
	// Requests, Texts, FailedTexts, errors by class and latency of the
	// requests made to the embedder (retries included).
	vecsink.EmbedStatsSnapshot
	// Embedded counts keys given a vector of their current text; Unchanged
	// keys whose text had not changed (no call); Parked keys parked as
	// dead letters; Rounds the rounds done; Failures the rounds that failed
	// (the service was unavailable: the keys stay queued).
	Embedded, Unchanged, Parked, Rounds, Failures int64
}

// EmbedStatus returns the counts of the embedding stage; ok is false when
// the Indexer has no embedder.
func (ix *Indexer) EmbedStatus() (st EmbedStatus, ok bool) {
	e := ix.embed
	if e == nil {
		return st, false
	}
	return EmbedStatus{
		EmbedStatsSnapshot: e.stats.Snapshot(),
		Embedded:           e.embedded.Load(),
		Unchanged:          e.unchanged.Load(),
		Parked:             e.parked.Load(),
		Rounds:             e.rounds.Load(),
		Failures:           e.failures.Load(),
	}, true
}

// missingEmbedder returns ErrNoEmbedder, naming the field and the
// embedder, when spec has a derived vector whose embedder e lacks (e may be
// nil: no embedder at all).
func missingEmbedder(spec *outbox.Spec, e *embedding) error {
	for _, d := range spec.DerivedVecs() {
		if e != nil && e.by[d.Embedder] != nil {
			continue
		}
		which := "the default embedder (indexer.WithEmbedder)"
		if d.Embedder != "" {
			which = fmt.Sprintf("embedder %q (indexer.WithNamedEmbedder)", d.Embedder)
		}
		return fmt.Errorf("%w: table %s, vector %s (vec0 table %s) from=%s needs %s", ErrNoEmbedder, spec.Source, d.Field, d.Table, strings.Join(d.From, ","), which)
	}
	return nil
}

// checkEmbedder fails with ErrNoEmbedder when the registry holds a derived
// vector whose embedder the Indexer lacks.
func (ix *Indexer) checkEmbedder(ctx context.Context) error {
	var specs []*outbox.Spec
	err := ix.retry(ctx, func(ctx context.Context) error {
		var err error
		specs, _, err = outbox.LoadSpecs(ctx, ix.db)
		return err
	})
	if err != nil {
		return err
	}
	for _, s := range specs {
		if err := missingEmbedder(s, ix.embed); err != nil {
			return err
		}
	}
	return nil
}

// queueDerived runs in the apply transaction, for a derived vector vs of t:
// it queues the keys whose row changed (an event other than OpVector) and
// still exists, and forgets the text hash of keys left without a vector
// (state: the vector state of each key after its events, see
// vecsink.Table.VectorState).
func queueDerived(ctx context.Context, tx outbox.DB, t *table, vs *vecsink.Table, keys []*keyState, rows map[any]srcRow, state [][]byte, now time.Time) error {
	var queue, clear []any
	for i, ks := range keys {
		_, exists := rows[ks.key]
		if !exists || (state[i] != nil && len(state[i]) == 0) {
			clear = append(clear, ks.key)
		}
		if exists && slices.ContainsFunc(ks.events, func(e outbox.Event) bool { return e.Op != outbox.OpVector }) {
			queue = append(queue, ks.key)
		}
	}
	field := vs.VecSpec().Table
	if err := outbox.ClearEmbedStates(ctx, tx, t.spec.Source, field, clear); err != nil {
		return err
	}
	return outbox.QueueEmbeds(ctx, tx, t.spec.Source, field, queue, now)
}

// embedAction is what a round does with a queued key.
type embedAction int

const (
	embedGone     embedAction = iota // the row is gone: the applier removes its vector
	embedSame                        // the text hashes to the stored state: nothing to do
	embedNone                        // blank text: the row gets no vector
	embedVector                      // embedded: write the vector
	embedFailed                      // the service can never embed this text: park it
	embedUnusable                    // the registry entry is gone or not derived any more
)

// embedItem is one queued key in a round.
type embedItem struct {
	q      outbox.QueuedEmbed
	spec   *outbox.Spec
	vec    *outbox.VecSpec
	exists bool
	text   string
	hash   []byte
	act    embedAction
	out    []byte // the encoded vector or chunk list (embedVector)
	msg    string // the failure (embedFailed)

	chunks    []vecsink.Chunk      // chunked fields: the text's chunks
	chunkVecs []outbox.ChunkVector // and their vectors
}

// embedGroup is the items of one derived vector.
type embedGroup struct {
	spec  *outbox.Spec
	vec   *outbox.VecSpec
	items []*embedItem
}

// embedRound is a round of queued keys read and embedded, ready to apply.
type embedRound struct {
	queued int   // queue entries read
	last   int64 // the last queue entry id read
	groups []*embedGroup
	err    error
	done   chan struct{} // closed when a prefetched round is ready

	readLast int64 // a pipeline round's last entry id, once read; guarded by embedding.pmu (0: not read yet)
}

// embedTxKeys bounds the keys one apply transaction of a round settles, so
// that it holds the write lock for a few milliseconds only.
const embedTxKeys = 256

// pipelineDepth is how many rounds are prepared (read and embedded) in the
// background at most.
const pipelineDepth = 2

// embedStep runs one embedding round and returns how many queued keys it
// settled (removed from the queue). It returns 0 and no error when the
// queue is empty. A failure of the embedding service is returned wrapped:
// nothing was written and the keys stay queued.
//
// Rounds are pipelined: as soon as a round has read its queue entries, the
// next round (the entries after them) is read and embedded in the
// background, up to pipelineDepth rounds ahead, and the applier starts one
// after each batch when none runs; so the embedding service is kept
// busy (the BatchEmbedder's concurrency limit spans the rounds) while
// vectors are written and applied. Every round checks its texts again when
// it is written.
func (ix *Indexer) embedStep(ctx context.Context) (int, error) {
	e := ix.embed
	if e == nil {
		return 0, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var r *embedRound
	e.pmu.Lock()
	var p *embedRound
	if len(e.pending) > 0 {
		p = e.pending[0]
	}
	e.pmu.Unlock()
	if p != nil {
		select {
		case <-p.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		e.pmu.Lock()
		if len(e.pending) > 0 && e.pending[0] == p {
			e.pending = e.pending[1:]
		}
		e.pmu.Unlock()
		// A prefetched round that found nothing after its start may have
		// left unsettled entries before it: read from the start again.
		if (p.err == nil && p.queued > 0) || (p.err != nil && e.ctx.Err() == nil) {
			r = p
		}
	}
	if r == nil {
		r = ix.prepareRound(ctx, 0, nil)
	}
	if r.err != nil {
		e.failures.Add(1)
		return 0, r.err
	}
	if r.queued == 0 {
		return 0, nil
	}
	settled, err := ix.applyRound(ctx, r)
	if err == nil && settled == 0 && r == p {
		// A prefetched round can be stale: a rebuild re-queued its
		// entries under new ids, or their texts changed, after it read
		// them. Settling nothing from it says nothing about the queue:
		// read the queue from its start again.
		if r = ix.prepareRound(ctx, 0, nil); r.err != nil {
			e.failures.Add(1)
			return 0, r.err
		}
		if r.queued == 0 {
			return 0, nil
		}
		settled, err = ix.applyRound(ctx, r)
	}
	if err != nil {
		if errors.Is(err, outbox.ErrLeaseLost) {
			ix.lostLease()
		}
		return settled, err
	}
	ix.Notify()
	return settled, nil
}

// startRound starts preparing, in the background, the round of the queue
// entries after entry id after, unless pipelineDepth rounds are being
// prepared or the indexer is closing. The caller holds e.pmu.
func (ix *Indexer) startRound(after int64) {
	e := ix.embed
	if len(e.pending) >= pipelineDepth || e.ctx.Err() != nil {
		return
	}
	p := &embedRound{done: make(chan struct{})}
	e.pending = append(e.pending, p)
	go func() {
		defer close(p.done)
		q := ix.prepareRound(e.ctx, after, p)
		p.queued, p.last, p.groups, p.err = q.queued, q.last, q.groups, q.err
		if q.err == nil && q.queued == 0 {
			// Nothing after its start: leave the pipeline, so that the
			// applier's next kick starts a round from the queue's start.
			e.pmu.Lock()
			if i := slices.Index(e.pending, p); i >= 0 {
				e.pending = slices.Delete(e.pending, i, i+1)
			}
			e.pmu.Unlock()
		}
	}()
}

// kickEmbed starts preparing a round in the background when no round is
// running or being prepared: the applier calls it after each batch, so that
// embedding overlaps applying a long log instead of waiting for its end.
func (ix *Indexer) kickEmbed() {
	e := ix.embed
	if e == nil || !e.mu.TryLock() {
		return
	}
	defer e.mu.Unlock()
	e.pmu.Lock()
	defer e.pmu.Unlock()
	switch n := len(e.pending); {
	case n == 0:
		ix.startRound(0)
	case e.pending[n-1].readLast > 0:
		// Entries queued since the newest round read the queue.
		ix.startRound(e.pending[n-1].readLast)
	}
}

// prepareRound reads queued keys, their texts and states (plain reads, no
// write transaction), and embeds the texts that changed, outside any
// transaction.
//
// A round that read entries starts preparing the next one (the entries
// after it) at once, when it is not in the background pipeline (self is
// nil) and the pipeline is empty, or when it is the newest round of the
// pipeline (self); a background round that finds nothing leaves the
// pipeline.
func (ix *Indexer) prepareRound(ctx context.Context, after int64, self *embedRound) *embedRound {
	e := ix.embed
	r := &embedRound{}
	var queued []outbox.QueuedEmbed
	r.err = ix.retry(ctx, func(ctx context.Context) error {
		var err error
		queued, err = outbox.ReadEmbedQueue(ctx, ix.db, after, e.round)
		return err
	})
	if r.err != nil || len(queued) == 0 {
		return r
	}
	r.queued, r.last = len(queued), queued[len(queued)-1].ID
	{
		e.pmu.Lock()
		if self != nil {
			self.readLast = r.last
		}
		if (self == nil && len(e.pending) == 0) || (self != nil && len(e.pending) > 0 && e.pending[len(e.pending)-1] == self) {
			ix.startRound(r.last)
		}
		e.pmu.Unlock()
	}
	r.err = ix.retry(ctx, func(ctx context.Context) error {
		var err error
		r.groups, err = ix.readEmbedItems(ctx, ix.db, queued)
		return err
	})
	if r.err != nil {
		return r
	}
	// One text per item, or one per chunk of a chunked field's text.
	var pieces []piece
	var texts []string
	for _, g := range r.groups {
		for _, it := range g.items {
			if it.act != embedVector {
				continue
			}
			if !it.vec.Chunked() {
				pieces = append(pieces, piece{it, -1})
				texts = append(texts, it.text)
				continue
			}
			if k, _ := it.q.Key.(int64); k <= -outbox.MaxChunkKey || k >= outbox.MaxChunkKey {
				it.act, it.msg = embedFailed, fmt.Sprintf("key %v is outside the range chunk= supports (|key| < 2^52: chunk i of key k is vec0 rowid k*%d+i)", it.q.Key, outbox.MaxChunks)
				continue
			}
			ch, err := vecsink.NewChunker(it.vec.Chunk, it.vec.Overlap)
			if err != nil {
				it.act, it.msg = embedFailed, err.Error()
				continue
			}
			it.chunks = ch.Split(it.text)
			if len(it.chunks) > outbox.MaxChunks {
				it.act, it.msg = embedFailed, fmt.Sprintf("the text (%d bytes) makes %d chunks of chunk=%d, more than %d: it is not truncated", len(it.text), len(it.chunks), it.vec.Chunk, outbox.MaxChunks)
				continue
			}
			it.chunkVecs = make([]outbox.ChunkVector, len(it.chunks))
			for j, c := range it.chunks {
				pieces = append(pieces, piece{it, j})
				texts = append(texts, c.Text)
				it.chunkVecs[j] = outbox.ChunkVector{Start: c.Start, End: c.End}
			}
		}
	}
	if len(texts) == 0 {
		return r
	}
	vecs, fails, err := e.embedAll(ctx, texts, pieceEmbedders(pieces))
	if err != nil {
		r.err = fmt.Errorf("indexer: embedding %d texts (they stay queued): %w", len(texts), err)
		return r
	}
	for i, p := range pieces {
		it := p.it
		if it.act == embedFailed {
			continue
		}
		if f := fails[i]; f != nil {
			it.act, it.msg = embedFailed, f.Error()
			if p.chunk >= 0 {
				it.msg = fmt.Sprintf("chunk %d (bytes %d..%d): %s", p.chunk, it.chunks[p.chunk].Start, it.chunks[p.chunk].End, it.msg)
			}
			continue
		}
		if p.chunk >= 0 {
			it.chunkVecs[p.chunk].Vec = vecs[i]
			continue
		}
		b, err := outbox.EncodeVector(vecs[i], it.vec.Dim, it.vec.Encoding)
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("the embedder returned an empty vector")
		}
		if err != nil {
			it.act, it.msg = embedFailed, fmt.Sprintf("vecsink: %s: %v", e.by[it.vec.Embedder].id, err)
			continue
		}
		it.out = b
	}
	for _, p := range pieces {
		it := p.it
		if p.chunk != 0 || it.act == embedFailed {
			continue
		}
		b, err := outbox.EncodeChunks(it.chunkVecs, it.vec.Dim)
		if err != nil {
			it.act, it.msg = embedFailed, fmt.Sprintf("vecsink: %s: %v", e.by[it.vec.Embedder].id, err)
			continue
		}
		it.out = b
	}
	return r
}

// piece is one text of a round: an item's whole text, or one chunk of it.
type piece struct {
	it    *embedItem
	chunk int // -1: the whole text
}

// pieceEmbedders returns the embedder name of each piece.
func pieceEmbedders(pieces []piece) []string {
	out := make([]string, len(pieces))
	for i, p := range pieces {
		out[i] = p.it.vec.Embedder
	}
	return out
}

// embedAll embeds texts, each with the embedder names[i], one concurrent
// Embed call per embedder. fails[i] is the permanent failure of text i, if
// any; err is a failure of a whole call (an outage, a rejected request).
func (e *embedding) embedAll(ctx context.Context, texts, names []string) (vecs [][]float32, fails []*vecsink.EmbedError, err error) {
	vecs = make([][]float32, len(texts))
	fails = make([]*vecsink.EmbedError, len(texts))
	idx := map[string][]int{}
	var order []string
	for i, n := range names {
		if _, ok := idx[n]; !ok {
			order = append(order, n)
		}
		idx[n] = append(idx[n], i)
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for j, n := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ne := e.by[n]
			if ne == nil {
				errs[j] = fmt.Errorf("%w: embedder %q", ErrNoEmbedder, n)
				return
			}
			sub := make([]string, len(idx[n]))
			for k, i := range idx[n] {
				sub[k] = texts[i]
			}
			out, err := ne.be.Embed(ctx, sub)
			var pe *vecsink.PartialError
			if err != nil && !errors.As(err, &pe) {
				errs[j] = err
				return
			}
			for k, i := range idx[n] {
				vecs[i] = out[k]
				if pe != nil {
					fails[i] = pe.Failed(k)
				}
			}
		}()
	}
	wg.Wait()
	return vecs, fails, errors.Join(errs...)
}

// applyRound writes a prepared round in short transactions of at most
// embedTxKeys keys, each fenced by the lease: for every key whose text
// still hashes to what was embedded, the OpVector event, the state and the
// removal from the queue (or the dead letter). Keys whose text changed stay
// queued.
func (ix *Indexer) applyRound(ctx context.Context, r *embedRound) (int, error) {
	e := ix.embed
	type ref struct {
		g  *embedGroup
		it *embedItem
	}
	var all []ref
	for _, g := range r.groups {
		for _, it := range g.items {
			all = append(all, ref{g, it})
		}
	}
	total := 0
	for start := 0; start < len(all); start += embedTxKeys {
		if start > 0 {
			if err := ix.yield(ctx); err != nil { // a waiting writer first
				return total, err
			}
		}
		chunk := all[start:min(start+embedTxKeys, len(all))]
		var settled, embedded, unchanged, parked int
		err := ix.retry(ctx, func(ctx context.Context) error {
			settled, embedded, unchanged, parked = 0, 0, 0, 0
			return ix.inTx(ctx, func(tx *sql.Tx) error {
				if err := ix.fence(ctx, tx); err != nil {
					return err
				}
				now := ix.cfg.now()
				var done []int64
				var events []outbox.Event
				// The current texts, per group of the chunk.
				cur := map[*embedGroup]map[any]string{}
				keys := map[*embedGroup][]any{}
				for _, x := range chunk {
					if x.g.spec != nil {
						keys[x.g] = append(keys[x.g], x.it.q.Key)
					}
				}
				for g, ks := range keys {
					texts, err := ix.readTexts(ctx, tx, g.spec, g.vec, ks)
					if err != nil {
						return err
					}
					cur[g] = texts
				}
				// Hashes to record and failures to clear, per group, in
				// multi-row statements after the loop.
				type settledKeys struct {
					keys, failed []any
					hashes       [][]byte
				}
				var order []*embedGroup
				byGroup := map[*embedGroup]*settledKeys{}
				settle := func(g *embedGroup) *settledKeys {
					sk := byGroup[g]
					if sk == nil {
						sk = &settledKeys{}
						byGroup[g] = sk
						order = append(order, g)
					}
					return sk
				}
				for _, x := range chunk {
					g, it := x.g, x.it
					if g.spec == nil {
						done = append(done, it.q.ID)
						continue
					}
					text, exists := cur[g][it.q.Key]
					if exists != it.exists || (exists && string(outbox.EmbedHash(e.hashID(g.vec), text)) != string(it.hash)) {
						continue // changed meanwhile: stays queued
					}
					field := g.spec.EventField(g.vec)
					switch it.act {
					case embedNone:
						events = append(events, outbox.Event{Table: g.spec.Source, Key: it.q.Key, Op: outbox.OpVector, Vec: []byte{}, At: now, Field: field})
						sk := settle(g)
						sk.keys, sk.hashes = append(sk.keys, it.q.Key), append(sk.hashes, it.hash)
					case embedVector:
						events = append(events, outbox.Event{Table: g.spec.Source, Key: it.q.Key, Op: outbox.OpVector, Vec: it.out, At: now, Field: field})
						sk := settle(g)
						sk.keys, sk.hashes = append(sk.keys, it.q.Key), append(sk.hashes, it.hash)
						sk.failed = append(sk.failed, it.q.Key)
						embedded++
					case embedFailed:
						// The stale vector goes: it is not the text's.
						events = append(events, outbox.Event{Table: g.spec.Source, Key: it.q.Key, Op: outbox.OpVector, Vec: []byte{}, At: now, Field: field})
						if err := outbox.ClearEmbedStates(ctx, tx, g.spec.Source, g.vec.Table, []any{it.q.Key}); err != nil {
							return err
						}
						if err := outbox.ParkEmbedFailure(ctx, tx, g.spec.Source, g.vec.Table, it.q.Key, it.msg, now); err != nil {
							return err
						}
						parked++
					case embedSame:
						unchanged++
					}
					done = append(done, it.q.ID)
				}
				for _, g := range order {
					sk := byGroup[g]
					if err := outbox.SetEmbedStates(ctx, tx, g.spec.Source, g.vec.Table, sk.keys, sk.hashes); err != nil {
						return err
					}
					if err := outbox.ClearEmbedFailuresOf(ctx, tx, g.spec.Source, g.vec.Table, sk.failed); err != nil {
						return err
					}
				}
				if err := outbox.Append(ctx, tx, events); err != nil {
					return err
				}
				settled = len(done)
				return outbox.DequeueEmbeds(ctx, tx, done)
			})
		})
		if err != nil {
			return total, err
		}
		total += settled
		e.embedded.Add(int64(embedded))
		e.unchanged.Add(int64(unchanged))
		e.parked.Add(int64(parked))
		if parked > 0 {
			ix.log.Error("texts the embedding service cannot embed were parked as dead letters", "keys", parked)
		}
		ix.Notify()
	}
	e.rounds.Add(1)
	return total, nil
}

// hashID is the embedder identity hashed with the texts of v.
func (e *embedding) hashID(v *outbox.VecSpec) string {
	id := "none"
	if n := e.by[v.Embedder]; n != nil {
		id = n.id
	}
	if v.Chunked() {
		return fmt.Sprintf("%s/dim=%d/chunk=%d/overlap=%d", id, v.Dim, v.Chunk, v.Overlap)
	}
	return fmt.Sprintf("%s/dim=%d", id, v.Dim)
}

func groupKeys(g *embedGroup) []any {
	keys := make([]any, len(g.items))
	for i, it := range g.items {
		keys[i] = it.q.Key
	}
	return keys
}

// readEmbedItems reads the text and state of queued keys and decides what
// to do with each.
func (ix *Indexer) readEmbedItems(ctx context.Context, db outbox.DB, queued []outbox.QueuedEmbed) ([]*embedGroup, error) {
	e := ix.embed
	e.regMu.Lock()
	tables, err := e.reg.load(ctx, db)
	e.regMu.Unlock()
	if err != nil {
		return nil, err
	}
	byField := map[[2]string]*embedGroup{}
	var groups []*embedGroup
	for _, q := range queued {
		id := [2]string{q.Table, q.Field}
		g := byField[id]
		if g == nil {
			g = &embedGroup{}
			if t := tables[q.Table]; t != nil && t.err == nil {
				for _, v := range t.spec.VecSpecs() {
					if v.Table == q.Field && v.Derived() {
						g.spec, g.vec = t.spec, v
					}
				}
			}
			byField[id] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, &embedItem{q: q, spec: g.spec, vec: g.vec, act: embedUnusable})
	}
	for _, g := range groups {
		if g.spec == nil {
			continue
		}
		keys := groupKeys(g)
		texts, err := ix.readTexts(ctx, db, g.spec, g.vec, keys)
		if err != nil {
			return nil, err
		}
		states, err := outbox.EmbedStates(ctx, db, g.spec.Source, g.vec.Table, keys)
		if err != nil {
			return nil, err
		}
		for _, it := range g.items {
			it.text, it.exists = texts[it.q.Key]
			it.hash = outbox.EmbedHash(e.hashID(g.vec), it.text)
			switch st, ok := states[it.q.Key]; {
			case !it.exists:
				it.act = embedGone
			case ok && string(st) == string(it.hash):
				it.act = embedSame
			case strings.TrimSpace(it.text) == "":
				it.act = embedNone
			default:
				it.act = embedVector
			}
		}
	}
	return groups, nil
}

// readTexts returns the embedding text (outbox.EmbedText of the from=
// columns) of the keys of spec's source table that exist.
func (ix *Indexer) readTexts(ctx context.Context, db outbox.DB, spec *outbox.Spec, v *outbox.VecSpec, keys []any) (map[any]string, error) {
	cols := make([]string, len(v.From))
	for i, c := range v.From {
		cols[i] = outbox.Quote(c)
	}
	q := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s IN (", outbox.Quote(spec.Key), strings.Join(cols, ", "), outbox.Quote(spec.Source), outbox.Quote(spec.Key))
	out := make(map[any]string, len(keys))
	err := sqlutil.Chunked(keys, sqlutil.ChunkSize, func(chunk []any) error {
		rows, err := db.QueryContext(ctx, q+outbox.Placeholders(len(chunk))+")", chunk...)
		if err != nil {
			return fmt.Errorf("read text of %s (from=%s): %w", spec.Source, strings.Join(v.From, ","), err)
		}
		defer rows.Close()
		vals := make([]any, len(v.From))
		dest := make([]any, 1+len(vals))
		var k any
		dest[0] = &k
		for i := range vals {
			dest[1+i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return fmt.Errorf("read text of %s: %w", spec.Source, err)
			}
			nk, err := outbox.NormalizeKey(k)
			if err != nil {
				return fmt.Errorf("read text of %s: %w", spec.Source, err)
			}
			out[nk] = outbox.EmbedText(vals)
		}
		return rows.Err()
	})
	return out, err
}

// embedLoop runs embedding rounds while Run runs: at once when the applier
// applied something or a round left keys queued, else every poll
// interval. It embeds only while this indexer holds the lease. Failures
// (the service is down) are logged and retried with backoff: the keys stay
// queued.
func (ix *Indexer) embedLoop(ctx context.Context) {
	e := ix.embed
	ticker := time.NewTicker(ix.cfg.pollInterval)
	defer ticker.Stop()
	failures := ix.cfg.newBackoff()
	failures.Reset()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wakeCh:
		case <-ticker.C:
		}
		for ctx.Err() == nil && ix.LeaseHeld() {
			n, err := ix.embedStep(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				ix.log.Warn("embedding round failed; the keys stay queued", "err", err)
				ix.observeError(err)
				d := failures.NextBackOff()
				if d < 0 {
					failures.Reset()
					d = ix.cfg.pollInterval
				}
				if sleep(ctx, d) != nil {
					return
				}
				continue
			}
			failures.Reset()
			if n == 0 {
				break
			}
		}
	}
}

// rebuildEmbeddings is what a rebuild of t runs in its transaction, once
// t's vec0 sidecars are filled from the log (the rebuild calls it; it is the
// only coupling between rebuilding and embedding). A rebuilt sidecar holds,
// per key, the newest vector of the log, which is the one the key's
// oi_embed_state describes, except for keys whose vector-clearing events
// the applier had not applied yet (the rebuild floor skips them): their
// state is dropped. Then every row is queued: keys whose text still hashes
// to their state keep their vector at no cost, the others (text changed by
// events the rebuild floor skips, a changed from= list or embedding model)
// are embedded again. t's sidecar names come from its sinks, so a sidecar
// built under another name (a new generation) is what is checked.
func rebuildEmbeddings(ctx context.Context, tx outbox.DB, t *table) error {
	derived := false
	for _, vs := range t.vecs {
		v := vs.VecSpec()
		if !v.Derived() {
			continue
		}
		derived = true
		keyCol := "rowid"
		switch {
		case t.spec.KeyType == outbox.KeyText:
			keyCol = "id"
		case v.Chunked(): // one row per chunk: the key is the rowid's high part
			keyCol = fmt.Sprintf("(rowid - (rowid & %d)) / %d", outbox.MaxChunks-1, outbox.MaxChunks)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM oi_embed_state WHERE tbl = ? AND field = ? AND key NOT IN (SELECT `+keyCol+` FROM `+outbox.Quote(vs.Name())+`)`,
			t.spec.Source, v.Table); err != nil {
			return fmt.Errorf("rebuild %s: embedding state of %s: %w", t.spec.Source, v.Table, err)
		}
	}
	if !derived {
		return nil
	}
	_, err := outbox.RequeueEmbeddings(ctx, tx, t.spec)
	return err
}
