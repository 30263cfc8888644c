package ui_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
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

// The flows the UI tests run on a real worker.

type gateParams struct {
	Gate string `json:"gate"`
}

// gates are the channels the gated flows wait on, by name: a test closes
// one to let its run go on.
var gates sync.Map

var gateSeq atomic.Int64

// newGate names a gate of its own for a test (also under -count).
func newGate(t *testing.T) string {
	return fmt.Sprintf("%s-%d", t.Name(), gateSeq.Add(1))
}

func gate(name string) chan struct{} {
	ch, _ := gates.LoadOrStore(name, make(chan struct{}))
	return ch.(chan struct{})
}

var failStep = baton.Task("ui-test.fail-step", func(ctx context.Context, n int) (int, error) {
	baton.Logger(ctx).Info("checking the ledger", "n", n)
	return 0, baton.Permanent(errors.New("the ledger does not balance"))
})

// failingFlow fails with an error that the pages must show.
var failingFlow = baton.Flow("ui-test.failing", func(ctx baton.Context, n int) (int, error) {
	return failStep.Run(ctx, n)
})

var gatedStep = baton.Task("ui-test.gated-step", func(ctx context.Context, p gateParams) (string, error) {
	baton.Logger(ctx).Info("before the gate " + p.Gate)
	select {
	case <-gate(p.Gate):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	baton.Logger(ctx).Info("after the gate " + p.Gate)
	return "opened " + p.Gate, nil
})

var quickStep = baton.Task("ui-test.quick-step", func(_ context.Context, n int) (int, error) { return n * 2, nil })

// gatedFlow runs three quick steps, then one that waits for its gate.
var gatedFlow = baton.Flow("ui-test.gated", func(ctx baton.Context, p gateParams) (string, error) {
	for i := range 3 {
		if _, err := quickStep.Run(ctx, i); err != nil {
			return "", err
		}
	}
	return gatedStep.Run(ctx, p)
})

type approval struct {
	Approve bool `json:"approve"`
	Batch   int  `json:"batch" jsonschema:"minimum=1,multipleOf=5,description=How many plates to run (a multiple of 5)"`
}

// approvalFlow waits for an approval whose schema the form is made from.
var approvalFlow = baton.Flow("ui-test.approval", func(ctx baton.Context, _ int) (int, error) {
	a, err := baton.WaitForInput[approval](ctx, "approval", baton.Prompt("approve the batch of plates"))
	if err != nil {
		return 0, err
	}
	if !a.Approve {
		return 0, errors.New("not approved")
	}
	return quickStep.Run(ctx, a.Batch)
})

// extraFlows are the flows of the other test files, which the worker also
// runs (each file appends its own in an init function).
var extraFlows []baton.AnyFlow

// labTag is the tag of labStep, whose limit the limits page shows.
const labTag = "ui-test-lab"

var labStep = baton.Task("ui-test.lab-step", func(ctx context.Context, p gateParams) (string, error) {
	select {
	case <-gate(p.Gate):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "done " + p.Gate, nil
}, baton.Tags(labTag))

// labFlow holds a slot of the labTag limit until its gate opens.
var labFlow = baton.Flow("ui-test.lab", func(ctx baton.Context, p gateParams) (string, error) {
	return labStep.Run(ctx, p)
})

// cluster is a real server on loopback with a SQLite store and a worker
// running the test flows.
type cluster struct {
	url string
	c   *client.Client
	st  store.Store
}

func newCluster(t *testing.T) *cluster {
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
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, LeaseTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener = api.RequestLineListener(ts.Listener)
	ts.Start()
	cl, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := progcmd.ProgramOf[baton.AnyFlow]("", append([]baton.AnyFlow{failingFlow, gatedFlow, approvalFlow, mappedFlow, labFlow}, extraFlows...)...)
	wk, err := worker.New(worker.Config{Client: rc, Name: t.Name(), Queues: []string{apitype.DefaultQueue}, Flows: p.Flows,
		Tasks: p.Tasks, Concurrency: 4, ShutdownGrace: 100 * time.Millisecond, SuspendGrace: 20 * time.Millisecond,
		PausePoll: -1, // a pause asked for is seen at the next step, not up to a second later
		Logger:    slog.New(slog.DiscardHandler), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wk.Run(wctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		ts.CloseClientConnections()
		ts.Close()
		srv.Stop()
		st.Close()
	})
	return &cluster{url: ts.URL, c: cl, st: st}
}

// create creates a run of flow and returns its ID.
func (c *cluster) create(t *testing.T, flow string, params string) string {
	t.Helper()
	req := apitype.CreateRunRequest{Flow: flow}
	if params != "" {
		req.Parameters = []byte(params)
	}
	run, _, err := c.c.CreateRun(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return run.ID
}

// wait waits until run id satisfies ok, failing after a while.
func (c *cluster) wait(t *testing.T, id, what string, ok func(apitype.RunDetail) bool) apitype.RunDetail {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := c.c.GetRun(context.Background(), id)
		if err == nil && ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: not %s after 30s: %+v, %v", id, what, d.Run, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) waitState(t *testing.T, id, state string) apitype.RunDetail {
	t.Helper()
	return c.wait(t, id, state, func(d apitype.RunDetail) bool { return d.State == state })
}

// waitPaused waits until run id is PAUSED on its wait step.
func (c *cluster) waitPaused(t *testing.T, id string) {
	t.Helper()
	c.wait(t, id, "PAUSED on a wait", func(d apitype.RunDetail) bool {
		if d.State != "PAUSED" {
			return false
		}
		for _, tr := range d.TaskRuns {
			if tr.State == "WAITING" {
				return true
			}
		}
		return false
	})
}
