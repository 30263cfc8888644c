package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// trace is one line the slow-item task wrote: start, end or cancelled.
type trace struct {
	what, key string
	at        time.Time
}

// traces returns the slow-item traces of run id, in log order.
func traces(t *testing.T, e *env, id string) []trace {
	t.Helper()
	f, err := os.Open(e.execLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []trace
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 5 || fs[1] != id {
			continue
		}
		ns, _ := strconv.ParseInt(fs[4], 10, 64)
		out = append(out, trace{what: fs[0], key: fs[2], at: time.Unix(0, ns)})
	}
	return out
}

// waitTraces waits until run id has at least n traces of kind what and
// returns them all.
func waitTraces(t *testing.T, e *env, id, what string, n int) []trace {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tr := traces(t, e, id)
		count := 0
		for _, x := range tr {
			if x.what == what {
				count++
			}
		}
		if count >= n {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: %d %q traces after 30s, want %d", id, count, what, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitState polls run id until it is in a final state and returns it with
// the time it was first seen so.
func waitState(t *testing.T, cl *client.Client, id string, timeout time.Duration) (apitype.RunDetail, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, err := cl.GetRun(context.Background(), id)
		if err == nil {
			switch d.State {
			case "COMPLETED", "FAILED", "CANCELLED", "CRASHED":
				return d, time.Now()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after %s (%v)", id, d.State, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStopped checks, some time after run id ended, that no task
// function of it started after since, none returned after by, every one
// that started has returned, and no task run is left PENDING or RUNNING:
// those that never started are CANCELLED.
func checkStopped(t *testing.T, cl *client.Client, e *env, id string, since, by time.Time) {
	t.Helper()
	time.Sleep(1500 * time.Millisecond) // a late claim would start within this
	open := map[string]bool{}
	for _, x := range traces(t, e, id) {
		switch x.what {
		case "start":
			open[x.key] = true
			if x.at.After(since) {
				t.Errorf("step %s started %s after the run was told to stop", x.key, x.at.Sub(since))
			}
		case "end", "cancelled":
			delete(open, x.key)
			if x.at.After(by) {
				t.Errorf("step %s returned (%s) %s too late", x.key, x.what, x.at.Sub(by))
			}
		}
	}
	for key := range open {
		t.Errorf("step %s started and never returned", key)
	}
	d, err := cl.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]bool{}
	for _, x := range traces(t, e, id) {
		started[x.key] = true
	}
	for _, tr := range d.TaskRuns {
		switch {
		case tr.State == "PENDING" || tr.State == "RUNNING":
			t.Errorf("task run %s is %s after the run ended %s", tr.Key, tr.State, d.State)
		case !started[tr.Key] && tr.State != "CANCELLED":
			t.Errorf("task run %s never started but is %s, want CANCELLED", tr.Key, tr.State)
		}
	}
}

// TestCancelStopsDistributedWork: cancelling a run that maps a distributed
// task over items on two workers starts no further item, stops the running
// ones, and the run is CANCELLED within a second; a run that fails on a
// permanent item failure cancels its queued items and stops the others.
func TestCancelStopsDistributedWork(t *testing.T) {
	t.Parallel()
	forBackends(t, testCancelStopsDistributedWork)
}

// forBackends runs test on a new cluster of each store: SQLite, and
// PostgreSQL when BATON_TEST_POSTGRES is set.
func forBackends(t *testing.T, test func(t *testing.T, c *cluster)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t, "")
		c.db = filepath.Join(c.e.home, "baton.db")
		test(t, c)
	})
	if url := os.Getenv("BATON_TEST_POSTGRES"); url != "" {
		t.Run("postgres", func(t *testing.T) {
			t.Parallel()
			test(t, newCluster(t, freshDatabase(t, url)))
		})
	}
}

func testCancelStopsDistributedWork(t *testing.T, c *cluster) {
	_, url := c.server()
	cl, _ := client.New(url)
	for range 2 {
		c.start(progBin, "worker", "--server", url, "--concurrency", "2", "--slots", "default=2")
	}

	t.Run("cancel", func(t *testing.T) {
		r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "slowmap",
			Parameters: []byte(`{"n":24,"sleep_ms":1500,"fail_at":-1}`)})
		if err != nil {
			t.Fatal(err)
		}
		// Cancel in the middle of the first wave: four items run (two slots
		// on each worker) and no claim is in flight.
		waitTraces(t, c.e, r.ID, "start", 4)
		time.Sleep(400 * time.Millisecond)
		asked := time.Now()
		v, err := cl.CancelRun(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.State != "CANCELLING" || v.WorkerID == "" {
			t.Fatalf("cancel answered %s (worker %q), want CANCELLING held by a worker", v.State, v.WorkerID)
		}
		d, seen := waitState(t, cl, r.ID, 10*time.Second)
		if d.State != "CANCELLED" {
			t.Fatalf("run ended %s, want CANCELLED", d.State)
		}
		took := seen.Sub(asked)
		if took > time.Second {
			t.Errorf("the run was CANCELLED %s after the cancel, want within 1s", took)
		}
		t.Logf("CANCELLED %s after the cancel (recorded %s after it)", took.Round(time.Millisecond),
			d.EndedAt.Sub(asked).Round(time.Millisecond))
		// The run waits for its running items to return before it ends.
		checkStopped(t, cl, c.e, r.ID, asked, *d.EndedAt)
	})

	t.Run("retry after cancel", func(t *testing.T) {
		// Items that take a second to return once cancelled outlive the
		// cancelled run; a retry at once waits for them, sees them
		// CANCELLED and runs them again.
		r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "slowmap",
			Parameters: []byte(`{"n":8,"sleep_ms":600,"fail_at":-1,"linger_ms":1000}`)})
		if err != nil {
			t.Fatal(err)
		}
		waitTraces(t, c.e, r.ID, "start", 4)
		if _, err := cl.CancelRun(context.Background(), r.ID); err != nil {
			t.Fatal(err)
		}
		if d, _ := waitState(t, cl, r.ID, 10*time.Second); d.State != "CANCELLED" {
			t.Fatalf("run ended %s, want CANCELLED", d.State)
		}
		if _, err := cl.RetryRun(context.Background(), r.ID); err != nil {
			t.Fatal(err)
		}
		if d, _ := waitState(t, cl, r.ID, 20*time.Second); d.State != "COMPLETED" {
			t.Fatalf("the retry ended %s (%+v), want COMPLETED", d.State, d.Error)
		}
	})

	t.Run("failure", func(t *testing.T) {
		r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "slowmap",
			Parameters: []byte(`{"n":24,"sleep_ms":1500,"fail_at":0}`)})
		if err != nil {
			t.Fatal(err)
		}
		// Item 0 fails after 500ms, while items 1-3 still work.
		d, seen := waitState(t, cl, r.ID, 20*time.Second)
		if d.State != "FAILED" {
			t.Fatalf("run ended %s, want FAILED", d.State)
		}
		failed := time.Time{}
		for _, x := range traces(t, c.e, r.ID) {
			if x.what == "end" && strings.HasSuffix(x.key, ".0") {
				failed = x.at
			}
		}
		if failed.IsZero() {
			t.Fatal("item 0 did not fail")
		}
		took := seen.Sub(failed) // typically tens of milliseconds
		if took > 2*time.Second {
			t.Errorf("the run was FAILED %s after its item failed, want within 2s", took)
		}
		t.Logf("FAILED %s after its item failed (recorded %s after it)", took.Round(time.Millisecond),
			d.EndedAt.Sub(failed).Round(time.Millisecond))
		// A slot freed by the failure may claim the next item before the
		// run has ended (its function then starts a moment later); no claim
		// comes after the end, and what runs stops within a heartbeat.
		// (A claim concurrent with the end's transaction may carry a later
		// time than the end; one that began after the end was committed,
		// which is before it was seen, would be a fault.)
		for _, ev := range d.Events {
			if ev.TaskKey != "" && ev.From == "PENDING" && ev.To == "RUNNING" && ev.At.After(seen) {
				t.Errorf("step %s claimed %s after the run was seen FAILED", ev.TaskKey, ev.At.Sub(seen))
			}
		}
		checkStopped(t, cl, c.e, r.ID, seen.Add(200*time.Millisecond), seen.Add(time.Second))
	})
}

// TestCancelLocalRunThroughServer: `baton runs cancel` of a run executing
// locally in a user's process, while a server serves the same SQLite store,
// reaches that process: the run ends CANCELLED within a second, and the
// answer says who stops it. On PostgreSQL the same holds for any local run
// sharing the database.
func TestCancelLocalRunThroughServer(t *testing.T) {
	t.Parallel()
	forBackends(t, testCancelLocalRunThroughServer)
}

func testCancelLocalRunThroughServer(t *testing.T, c *cluster) {
	_, url := c.server()
	cl, _ := client.New(url)
	local := c.start(progBin, "run", "steps", "--db", c.db, "--params", `{"n":5000}`)
	var id string
	deadline := time.Now().Add(30 * time.Second)
	for id == "" {
		runs, err := cl.ListRuns(context.Background(), client.ListRunsParams{Flow: "steps"})
		if err == nil && len(runs) == 1 && runs[0].State == "RUNNING" {
			id = runs[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local run did not start: %v %v", runs, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for len(c.e.execs()) < 20 { // its steps are running
		if time.Now().After(deadline) {
			t.Fatal("the local run's steps did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	asked := time.Now()
	cmd := exec.Command(batonBin, "runs", "cancel", id, "--server", url)
	cmd.Env = append(os.Environ(), "BATON_HOME="+c.e.home, "BATON_SERVER=", "BATON_DB=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runs cancel: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "CANCELLING (the process running it stops it") {
		t.Errorf("runs cancel said %q, want CANCELLING and that the process running it stops it", out)
	}
	d, seen := waitState(t, cl, id, 10*time.Second)
	if d.State != "CANCELLED" {
		t.Fatalf("run ended %s, want CANCELLED", d.State)
	}
	if took := seen.Sub(asked); took > time.Second {
		t.Errorf("the run was CANCELLED %s after the cancel, want within 1s", took)
	}
	done := make(chan error, 1)
	go func() { done <- local.Wait() }()
	select {
	case <-done:
		if code := local.ProcessState.ExitCode(); code != 1 {
			t.Errorf("the local run's process exited %d, want 1 (the run did not complete)", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the local run's process did not exit after its run was cancelled")
	}
}
