// Command benchprog is the user program of the distributed benchmark
// (go run ./bench distributed): a Baton program built with baton.Main whose
// `worker` command the suite starts several times against one server.
package main

import (
	"context"
	"time"

	"github.com/batonhq/baton"

	_ "github.com/batonhq/baton/bench/internal/benchprof" // -cpuprofile of the suite
)

// MapParams are the parameters of bench.remote-map.
type MapParams struct {
	N int `json:"n"`
}

// SleepParams are the parameters of bench.sleep-until.
type SleepParams struct {
	Until time.Time `json:"until"`
}

// The flows of the suite. Their names are the contract with bench/distributed.go.
var (
	// remoteNoop is distributed: its task runs are claimed by the workers
	// serving the queue bench.
	remoteNoop = baton.Task("bench.remote-noop", func(_ context.Context, n int) (int, error) { return n, nil },
		baton.Queue("bench"))

	// remoteMap maps remoteNoop over N items; it returns N.
	remoteMap = baton.Flow("bench.remote-map", func(ctx baton.Context, p MapParams) (int, error) {
		out, err := baton.WaitAll(ctx, remoteNoop.Map(ctx, make([]int, p.N)))
		return len(out), err
	})

	// slotSleep is distributed on the queue slots and sleeps 10 ms: the
	// suite serves that queue with workers of 8 slots each, to measure how
	// well claims keep few slots busy.
	slotSleep = baton.Task("bench.slot-sleep", func(ctx context.Context, n int) (int, error) {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return n, nil
	}, baton.Queue("slots"))

	// slotMap maps slotSleep over N items; it returns N.
	slotMap = baton.Flow("bench.slot-map", func(ctx baton.Context, p MapParams) (int, error) {
		out, err := baton.WaitAll(ctx, slotSleep.Map(ctx, make([]int, p.N)))
		return len(out), err
	})

	// tagNoop and taglessNoop are no-ops on the queue tagged; tagNoop
	// carries the tag bench-tag, whose limit the suite sets to 100 (and
	// deletes), to measure what the slot claim costs.
	tagNoop = baton.Task("bench.tag-noop", func(_ context.Context, n int) (int, error) { return n, nil },
		baton.Queue("tagged"), baton.Tags("bench-tag"))
	taglessNoop = baton.Task("bench.tagless-noop", func(_ context.Context, n int) (int, error) { return n, nil },
		baton.Queue("tagged"))

	// tagMap maps tagNoop over N items; it returns N.
	tagMap = baton.Flow("bench.tag-map", func(ctx baton.Context, p MapParams) (int, error) {
		out, err := baton.WaitAll(ctx, tagNoop.Map(ctx, make([]int, p.N)))
		return len(out), err
	})

	// tagMapUnlimited is tagMap under another name: the suite runs it after
	// deleting the limit (one completed run per flow).
	tagMapUnlimited = baton.Flow("bench.tag-map-unlimited", func(ctx baton.Context, p MapParams) (int, error) {
		out, err := baton.WaitAll(ctx, tagNoop.Map(ctx, make([]int, p.N)))
		return len(out), err
	})

	// taglessMap maps taglessNoop over N items; it returns N.
	taglessMap = baton.Flow("bench.tagless-map", func(ctx baton.Context, p MapParams) (int, error) {
		out, err := baton.WaitAll(ctx, taglessNoop.Map(ctx, make([]int, p.N)))
		return len(out), err
	})

	localNoop = baton.Task("bench.noop", func(_ context.Context, n int) (int, error) { return n, nil })

	// small runs 5 local no-op tasks.
	small = baton.Flow("bench.small", func(ctx baton.Context, _ struct{}) (int, error) {
		out, err := baton.WaitAll(ctx, localNoop.Map(ctx, []int{0, 1, 2, 3, 4}))
		return len(out), err
	})

	// waitInput waits for an int sent for the key "go" and returns it: the
	// suite pauses many runs of it, then resumes them through the API.
	waitInput = baton.Flow("bench.wait-input", func(ctx baton.Context, _ struct{}) (int, error) {
		return baton.WaitForInput[int](ctx, "go")
	})

	// sleepUntil sleeps until Until (a durable timer) and returns 0: the
	// suite makes many of them due in the same second.
	sleepUntil = baton.Flow("bench.sleep-until", func(ctx baton.Context, p SleepParams) (int, error) {
		return 0, baton.SleepUntil(ctx, p.Until)
	})

	// latency returns the time its code started, RFC 3339 with nanoseconds.
	latency = baton.Flow("bench.latency", func(ctx baton.Context, _ struct{}) (string, error) {
		return time.Now().Format(time.RFC3339Nano), nil
	})
)

func main() {
	baton.Main(remoteMap, slotMap, small, latency, waitInput, sleepUntil, tagMap, tagMapUnlimited, taglessMap)
}
