package engine

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/blob"
)

// InputBlobThreshold is the encoded size above which a task run's input
// is recorded in two pieces: its large parts (values of at least
// inputPartMin bytes, see blob.Split) in one content-addressed blob, the
// rest inline with the blob's reference (store.TaskRun.InputRef). Inputs
// that share their large parts, such as the items of a Map that all carry
// one dataset beside their own parameters, share that blob: the dataset is
// stored once per store instead of once per item (and is sent once to each
// worker that runs them, not once per task run).
//
// Why 8 KiB, where results go to the blob store above 64 KiB
// (BlobThreshold): a result is recorded once, by the task run that made
// it, while an input is what a fan-out repeats, N copies for N items, in
// the rows, in the write-ahead log, in each write of the task run and in
// each claim that hands it to a worker. Above 8 KiB (two SQLite pages of
// overflow per copy) the repeated copies cost more than one shared blob:
// writing new content costs a file write, an fsync and a rename (about 4 ms
// on this project's test machine, a few hundred µs on local NVMe), writing
// content that exists a hash and a touch (about 16 µs for 8 KiB), reading
// it on a worker one request per worker. Below 8 KiB, inline is always
// cheaper. The k-NN example's evaluation inputs (its dataset beside each
// k: 12.7 KB with the default 400 points, 17 KB at about 530) are above
// it; parameters, keys and small records stay inline as before. The cost
// of the choice is an fsync for an input over 8 KiB that nothing shares
// (a Map over distinct documents): such inputs go to the blob store too,
// which keeps the rule one size.
const InputBlobThreshold = 8 << 10

// inputPartMin is the smallest value split off an input into its blob:
// smaller values stay inline, so the inline piece holds an input's small
// fields (a k, a seed, a name) and the blob its data.
const inputPartMin = 1 << 10

// putMemo is how long this process trusts that content it stored is still
// in the blob store, writing it again only after (blob.Puts). Far below
// blob.Grace, which keeps a blob that long after its last write.
const putMemo = time.Minute

// inputCacheBytes is the memory budget of the cache of inputs' blobs read
// by this process (a worker running the items of a fan-out that share one
// dataset reads it once).
const inputCacheBytes = 64 << 20

// storeInput returns an encoded input as a task run records it: inline,
// or, when larger than InputBlobThreshold, the inline piece of blob.Split
// and the reference of the blob of its large parts. An input the blob
// store refuses is recorded inline, as it always was.
func (e *Engine) storeInput(raw json.RawMessage) (json.RawMessage, string) {
	if len(raw) <= InputBlobThreshold {
		return raw, ""
	}
	inline, parts, ok := blob.Split(raw, inputPartMin, InputBlobThreshold)
	if !ok {
		return raw, ""
	}
	ref, err := e.puts.Put(parts)
	if err != nil {
		return raw, ""
	}
	return inline, ref
}

// LoadInput returns a recorded input (store.TaskRun.Input and InputRef)
// whole, reading its blob when it has one. Blobs read are cached in
// memory (up to 64 MiB), so the task runs that share a dataset read it
// once.
func (e *Engine) LoadInput(raw json.RawMessage, ref string) (json.RawMessage, error) {
	if ref == "" {
		return raw, nil
	}
	parts, err := e.inputs.Get(ref)
	if err != nil {
		return nil, fmt.Errorf("read input blob %s: %w", ref, err)
	}
	return blob.Join(raw, parts)
}
