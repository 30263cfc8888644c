package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// waitState polls the run until it is in state.
func waitRunState(t *testing.T, c *cluster, cl *client.Client, id, state string, timeout time.Duration) apitype.RunDetail {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, err := cl.GetRun(context.Background(), id)
		if err == nil && d.State == state {
			return d
		}
		if time.Now().After(deadline) {
			c.dump(cl, id)
			t.Fatalf("run %s is %s (%v) after %s, want %s", id, d.State, err, timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// historyCount counts the entries of one action in a run's history.
func historyCount(t *testing.T, cl *client.Client, id, action string) int {
	t.Helper()
	page, err := cl.RunHistory(context.Background(), id, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range page.History {
		if h.Action == action {
			n++
		}
	}
	return n
}

// stepOf returns the run's only task run of task, or of several its only
// COMPLETED one, failing otherwise. (A step that an attempt killed with its
// worker was executing may have been recorded as started: the store leaves
// that task run of the lost attempt as it was, since it is not a
// distributed one, and the next attempt runs the step under a new one.)
func stepOf(t *testing.T, d apitype.RunDetail, task string) apitype.TaskRun {
	t.Helper()
	var found []apitype.TaskRun
	for _, tr := range d.TaskRuns {
		if tr.Task == task {
			found = append(found, tr)
		}
	}
	if len(found) > 1 {
		found = slices.DeleteFunc(found, func(tr apitype.TaskRun) bool { return tr.State != "COMPLETED" })
	}
	if len(found) != 1 {
		t.Fatalf("run %s has %d %s steps (COMPLETED of several), want 1: %+v", d.ID, len(found), task, d.TaskRuns)
	}
	return found[0]
}

// TestSleepSpansServerRestart: a run sleeping on a worker is suspended
// (PAUSED, holding nothing); the server and the worker are killed (-9)
// during the sleep and started again: the timer fires from the store after
// the due time, once, and the run completes.
func TestSleepSpansServerRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.db = filepath.Join(c.e.home, "baton.db")
	addr := freePort(t)
	url := "http://" + addr
	srv := c.serverAt(addr, "--lease-timeout", "2s")
	cl, _ := client.New(url)
	w := c.worker(url)
	const nap = 6 * time.Second
	r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "nap",
		Parameters: json.RawMessage(fmt.Sprint(nap.Milliseconds()))})
	if err != nil {
		t.Fatal(err)
	}
	d := waitRunState(t, c, cl, r.ID, "PAUSED", 30*time.Second)
	sleep := stepOf(t, d, "sleep")
	if sleep.State != "WAITING" || sleep.StartedAt == nil {
		t.Fatalf("sleep step %+v, want WAITING with its start", sleep)
	}
	due := sleep.StartedAt.Add(nap)

	for _, p := range []interface {
		Signal(os.Signal) error
	}{w.Process, srv.Process} {
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	w.Wait()
	srv.Wait()
	c.serverAt(addr, "--lease-timeout", "2s")
	c.worker(url)
	if left := time.Until(due); left <= 0 {
		t.Fatalf("the server came back %s after the sleep was due: the test did not restart it during the sleep", -left)
	}

	d = waitFinal(t, c, cl, r.ID, 60*time.Second)
	if d.State != "COMPLETED" || string(d.Result) != "1" {
		c.dump(cl, r.ID)
		t.Fatalf("run ended %s with %s (%+v), want COMPLETED with 1", d.State, d.Result, d.Error)
	}
	sleep = stepOf(t, d, "sleep")
	if sleep.State != "COMPLETED" || sleep.EndedAt == nil || sleep.EndedAt.Before(due) {
		t.Errorf("sleep step %s ended %v, want COMPLETED at or after %s", sleep.State, sleep.EndedAt, due)
	}
	if d.EndedAt == nil || d.EndedAt.Before(due) {
		t.Errorf("run ended at %v, before its sleep was due (%s)", d.EndedAt, due)
	}
	if n := historyCount(t, cl, r.ID, "timer_fired"); n != 1 {
		t.Errorf("%d timer_fired entries, want 1", n)
	}
	if n := c.e.execs()["step 1"]; n != 1 {
		t.Errorf("the step after the sleep ran %d times, want 1", n)
	}
}

// TestWorkerKilledBetweenInputAndItsUse: input resumes a paused run; the
// worker that replays it is killed (-9) while the step that uses the input
// is running, before anything of it is recorded. Another worker takes the
// run over: the run completes once with that input, which is recorded
// once and not asked for again; a second input is refused.
func TestWorkerKilledBetweenInputAndItsUse(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.db = filepath.Join(c.e.home, "baton.db")
	gate := t.TempDir()
	c.env = []string{"GATE_DIR=" + gate, "GATE_KEYS=use"}
	_, url := c.server()
	cl, _ := client.New(url)
	first := c.worker(url)
	r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "approve"})
	if err != nil {
		t.Fatal(err)
	}
	waitRunState(t, c, cl, r.ID, "PAUSED", 30*time.Second)
	if _, err := cl.SendInput(context.Background(), r.ID, apitype.InputRequest{Key: "n", Value: json.RawMessage(`7`)}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(gate, "at-use"), 30*time.Second)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if err := os.WriteFile(filepath.Join(gate, "go-use"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.worker(url)

	d := waitFinal(t, c, cl, r.ID, 60*time.Second)
	if d.State != "COMPLETED" || string(d.Result) != "7" {
		c.dump(cl, r.ID)
		t.Fatalf("run ended %s with %s (%+v), want COMPLETED with 7", d.State, d.Result, d.Error)
	}
	if w := stepOf(t, d, "input:n"); w.State != "COMPLETED" || string(w.Result) != "7" {
		t.Errorf("input step %s %s, want COMPLETED with 7", w.State, w.Result)
	}
	if u := stepOf(t, d, "gated"); u.State != "COMPLETED" || string(u.Result) != "7" {
		t.Errorf("step using the input %s %s, want COMPLETED with 7", u.State, u.Result)
	}
	if n := historyCount(t, cl, r.ID, "input_received"); n != 1 {
		t.Errorf("%d input_received entries, want 1", n)
	}
	if n := historyCount(t, cl, r.ID, "completed"); n > 1 {
		t.Errorf("%d completed entries, want at most 1", n)
	}
	_, err = cl.SendInput(context.Background(), r.ID, apitype.InputRequest{Key: "n", Value: json.RawMessage(`8`)})
	if err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("second input to the finished run: %v, want a 409", err)
	}
	log, err := os.ReadFile(c.e.execLog)
	if err != nil {
		t.Fatal(err)
	}
	if uses := strings.Count(string(log), "gated use "); uses < 1 || uses > 2 {
		t.Errorf("the step using the input ran %d times, want once, or twice across the kill:\n%s", uses, log)
	}
}

// TestTwoServersFireTimers: two servers on one PostgreSQL database both
// fire the timers of the runs sleeping on their workers; each timer fires
// once and every run completes once.
func TestTwoServersFireTimers(t *testing.T) {
	t.Parallel()
	db := os.Getenv("BATON_TEST_POSTGRES")
	if db == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("BATON_TEST_POSTGRES is not set; run the tests through scripts/with-postgres.sh")
		}
		t.Skip("BATON_TEST_POSTGRES is not set")
	}
	c := newCluster(t, freshDatabase(t, db))
	_, u1 := c.server()
	_, u2 := c.server()
	cl1, _ := client.New(u1)
	cl2, _ := client.New(u2)
	c.worker(u1 + "," + u2)
	c.worker(u2 + "," + u1)
	var ids []string
	for i := range 20 {
		cl := []*client.Client{cl1, cl2}[i%2]
		r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "nap", Parameters: json.RawMessage(`2000`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	c.waitAll(cl1, ids, 60*time.Second)
	for _, id := range ids {
		d, err := cl2.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != "COMPLETED" {
			t.Errorf("run %s ended %s", id, d.State)
			continue
		}
		if s := stepOf(t, d, "sleep"); s.State != "COMPLETED" {
			t.Errorf("run %s: sleep %s", id, s.State)
		}
		if n := historyCount(t, cl1, id, "timer_fired"); n != 1 {
			t.Errorf("run %s: %d timer_fired entries, want 1", id, n)
		}
	}
	if n := c.e.execs()["step 1"]; n != len(ids) {
		t.Errorf("the step after the sleep ran %d times, want %d", n, len(ids))
	}
}
