package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
	"github.com/batonhq/baton/internal/worker"
)

// calls counts the executions of tick per input.
var calls sync.Map // int -> *atomic.Int64

var nextBase atomic.Int64

// tick is a quick distributed task on the queue q.
var tick = baton.Task("worker-test.tick", func(_ context.Context, n int) (int, error) {
	c, _ := calls.LoadOrStore(n, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
	return n, nil
}, baton.Queue("q"))

// TwoMaps are the parameters of twoMaps: Base keeps the inputs of
// concurrent tests apart.
type TwoMaps struct {
	Base int `json:"base"`
	N    int `json:"n"`
}

// twoMaps maps tick over N items, then over N more: the second map is
// dispatched only once the first is done, when the worker's slot is free and
// nothing is queued.
var twoMaps = baton.Flow("worker-test.two-maps", func(ctx baton.Context, p TwoMaps) (int, error) {
	total := 0
	for phase := range 2 {
		in := make([]int, p.N)
		for i := range in {
			in[i] = p.Base + phase*p.N + i
		}
		out, err := baton.WaitAll(ctx, tick.Map(ctx, in))
		if err != nil {
			return 0, err
		}
		total += len(out)
	}
	return total, nil
})

// counter counts the worker-protocol requests by path suffix; drop, when
// set, decides per request whether to answer it or to cut the connection
// after the server has handled it (a lost answer).
type counter struct {
	next http.Handler
	mu   sync.Mutex
	n    map[string]int
	drop func(path string, body []byte) bool
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	for _, suffix := range []string{"/claim", "/complete", "/holding"} {
		if r.Method == "POST" && strings.HasSuffix(r.URL.Path, suffix) {
			c.mu.Lock()
			c.n[suffix]++
			c.mu.Unlock()
		}
	}
	if c.drop != nil && c.drop(r.URL.Path, body) {
		rec := httptest.NewRecorder()
		c.next.ServeHTTP(rec, r) // the server does the work ...
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // ... and the answer is lost
		}
		return
	}
	c.next.ServeHTTP(w, r)
}

func (c *counter) get(suffix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[suffix]
}

// serveSQLite starts a server (30 s leases) on a fresh SQLite store and
// returns both; the caller stops the server and closes the store.
func serveSQLite(t *testing.T) (store.Store, *server.Server) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, LeaseTimeout: 30 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, srv
}

// start runs a server on a fresh SQLite store behind c and a worker with one
// slot on the queue q; it returns a client of the server.
func start(t *testing.T, c *counter) *client.Client {
	t.Helper()
	return startWith(t, c, 1, twoMaps)
}

// startWith is start with slots slots on q and a worker serving flows.
func startWith(t *testing.T, c *counter, slots int, serve ...baton.AnyFlow) *client.Client {
	t.Helper()
	cl, _ := startStore(t, c, slots, serve...)
	return cl
}

// startStore is startWith that also returns the server's store; slots 0
// gives the worker no slots of distributed task runs.
func startStore(t *testing.T, c *counter, slots int, serve ...baton.AnyFlow) (*client.Client, store.Store) {
	t.Helper()
	ctx := context.Background()
	st, srv := serveSQLite(t)
	c.next, c.n = srv.Handler(), map[string]int{}
	ts := httptest.NewServer(c)
	cl, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := progcmd.ProgramOf("", serve...)
	flows, tasks := p.Flows, p.Tasks
	var slotsOf map[string]int
	if slots > 0 {
		slotsOf = map[string]int{"q": slots}
	}
	wk, err := worker.New(worker.Config{Client: rc, Name: t.Name(), Queues: []string{apitype.DefaultQueue},
		Slots: slotsOf, Flows: flows, Tasks: tasks,
		Logger: slog.New(slog.DiscardHandler), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- wk.Run(wctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		ts.Close()
		srv.Stop()
		st.Close()
	})
	return cl, st
}

// runTwoMaps runs twoMaps through the API and checks that it completes
// within a deadline shorter than the worker's claim wait, and that every
// item ran exactly once.
func runTwoMaps(t *testing.T, cl *client.Client, n int) {
	t.Helper()
	base := int(nextBase.Add(1_000_000)) // apart from other tests' items (and -count)
	ctx := context.Background()
	params, _ := json.Marshal(TwoMaps{Base: base, N: n})
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: "worker-test.two-maps", Parameters: params})
	if err != nil {
		t.Fatal(err)
	}
	// Well under the claim wait (60 s in tests): a slot that only the end of
	// a long poll refills makes the run miss it.
	deadline := time.Now().Add(50 * time.Second)
	for {
		got, err := cl.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "COMPLETED" {
			if string(got.Result) != "" && strings.TrimSpace(string(got.Result)) != jsonInt(2*n) {
				t.Fatalf("run result %s, want %d", got.Result, 2*n)
			}
			break
		}
		if got.State != "RUNNING" && got.State != "SCHEDULED" && got.State != "PENDING" {
			t.Fatalf("run ended %s: %+v", got.State, got.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("run still %s after 50 s: a freed slot waited for a long poll to end", got.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := base; i < base+2*n; i++ {
		v, ok := calls.Load(i)
		if !ok || v.(*atomic.Int64).Load() != 1 {
			got := int64(0)
			if ok {
				got = v.(*atomic.Int64).Load()
			}
			t.Errorf("item %d ran %d times, want 1", i, got)
		}
	}
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestOneSlotRefillsAtOnce: a worker with one slot running quick tasks
// reports each completion and claims the next task in one round trip,
// instead of a claim cycle per task that waits out a poll interval. It
// counts the worker's requests, so it does not depend on the machine's
// speed; and since the claim wait is longer than the test's deadline, a
// freed slot that only the end of a long poll would refill (the second map,
// dispatched when nothing is queued) fails it too.
func TestOneSlotRefillsAtOnce(t *testing.T) {
	t.Parallel()
	c := &counter{}
	cl := start(t, c)
	const n = 15
	runTwoMaps(t, cl, n)
	claims, completes := c.get("/claim"), c.get("/complete")
	perTask := float64(claims+completes) / (2 * n)
	t.Logf("%d tasks: %d claims, %d completes (%.2f requests per task)", 2*n, claims, completes, perTask)
	// One request per task (the report of a completion claims the next
	// task), plus a few per phase when the queue runs dry.
	if limit := 2*n + 12; claims+completes > limit {
		t.Errorf("%d claim and complete requests for %d tasks, want at most %d", claims+completes, 2*n, limit)
	}
}

// TestLostClaimWithReportLosesNoWork: the answer to a claim that carried
// completions is lost after the server applied them and claimed the next
// task run. The worker does not resend the claim; it reports what it holds,
// so the task run claimed for it goes back to the queue, and every item
// runs exactly once.
func TestLostClaimWithReportLosesNoWork(t *testing.T) {
	t.Parallel()
	var dropped atomic.Int64
	c := &counter{drop: func(path string, body []byte) bool {
		return strings.HasSuffix(path, "/claim") && bytes.Contains(body, []byte(`"completions":[`)) &&
			dropped.Add(1) <= 2
	}}
	cl := start(t, c)
	runTwoMaps(t, cl, 10)
	if dropped.Load() < 2 {
		t.Fatalf("%d answers dropped, want 2: the worker did not report completions with its claims", dropped.Load())
	}
	if c.get("/holding") < 1 {
		t.Error("the worker never reported what it holds after losing a claim's answer")
	}
}

// gauge counts the executions of gaugeTask in progress and the most seen.
var gauge struct {
	mu       sync.Mutex
	now, max int
	ran      map[int]int
}

// gaugeTask is a quick distributed task on the queue pq that records how
// many of its executions overlap.
var gaugeTask = baton.Task("worker-test.gauge", func(_ context.Context, n int) (int, error) {
	gauge.mu.Lock()
	gauge.now++
	gauge.max = max(gauge.max, gauge.now)
	gauge.ran[n]++
	gauge.mu.Unlock()
	time.Sleep(200 * time.Microsecond) // a short task run: much shorter than a claim's round trip
	gauge.mu.Lock()
	gauge.now--
	gauge.mu.Unlock()
	return n, nil
}, baton.Queue("pq"))

var gaugeFlow = baton.Flow("worker-test.gauge-map", func(ctx baton.Context, n int) (int, error) {
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	out, err := baton.WaitAll(ctx, gaugeTask.Map(ctx, in))
	return len(out), err
})

// TestPrefetchKeepsTheSlotLimit: a worker running task runs much shorter
// than a claim's round trip claims more than its slots (the prefetch
// buffer), yet never executes more of them at once than it has slots, and
// every item runs exactly once.
func TestPrefetchKeepsTheSlotLimit(t *testing.T) {
	t.Parallel() // the only user of gauge
	const slots, items = 2, 120
	gauge.ran = map[int]int{}
	var maxAsked atomic.Int64
	c := &counter{drop: func(path string, body []byte) bool {
		var req api.Claim
		if strings.HasSuffix(path, "/claim") && json.Unmarshal(body, &req) == nil {
			for {
				old := maxAsked.Load()
				if int64(req.Tasks["pq"]) <= old || maxAsked.CompareAndSwap(old, int64(req.Tasks["pq"])) {
					break
				}
			}
		}
		return false
	}}
	ctx := context.Background()
	st, srv := serveSQLite(t)
	c.next, c.n = srv.Handler(), map[string]int{}
	ts := httptest.NewServer(c)
	cl, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := progcmd.ProgramOf("", gaugeFlow)
	flows, tasks := p.Flows, p.Tasks
	wk, err := worker.New(worker.Config{Client: rc, Name: t.Name(), Queues: []string{apitype.DefaultQueue},
		Slots: map[string]int{"pq": slots}, Flows: flows, Tasks: tasks,
		Logger: slog.New(slog.DiscardHandler), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- wk.Run(wctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		ts.Close()
		srv.Stop()
		st.Close()
	}()
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: "worker-test.gauge-map", Parameters: json.RawMessage(jsonInt(items))})
	if err != nil {
		t.Fatal(err)
	}
	for {
		got, err := cl.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "COMPLETED" {
			break
		}
		if got.State != "RUNNING" && got.State != "SCHEDULED" && got.State != "PENDING" {
			t.Fatalf("run ended %s: %+v", got.State, got.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	gauge.mu.Lock()
	defer gauge.mu.Unlock()
	if gauge.max > slots {
		t.Errorf("%d task runs executed at once, want at most %d (the slots)", gauge.max, slots)
	}
	for i := range items {
		if gauge.ran[i] != 1 {
			t.Errorf("item %d ran %d times, want 1", i, gauge.ran[i])
		}
	}
	if got := maxAsked.Load(); got <= slots {
		t.Errorf("the worker asked for at most %d task runs at once, want more than its %d slots (a prefetch buffer)", got, slots)
	}
}
