package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// TestWorkerKilledDuringFlowRetryDelay: a worker killed (-9) while its run
// waits out the flow's retry delay (AWAITING_RETRY) loses its lease like a
// worker killed while the run is RUNNING: the run is taken back, rescheduled
// with the next attempt and completed by another worker, instead of staying
// AWAITING_RETRY forever.
func TestWorkerKilledDuringFlowRetryDelay(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.db = filepath.Join(c.e.home, "baton.db")
	_, url := c.server()
	cl, _ := client.New(url)
	c.env = []string{"FLOW_RETRY_DELAY_MS=600000"} // far longer than the test
	first := c.worker(url)
	r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "retrywait"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := cl.GetRun(context.Background(), r.ID)
		if err == nil && d.State == "AWAITING_RETRY" {
			break
		}
		if time.Now().After(deadline) {
			c.dump(cl, r.ID)
			t.Fatalf("run is %s (%v), want AWAITING_RETRY after its first attempt failed", d.State, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	second := c.worker(url)

	// The lease (2 s) expires and the server takes the run back.
	d := waitFinal(t, c, cl, r.ID, 30*time.Second)
	if d.State != "COMPLETED" || d.Attempt != 2 {
		c.dump(cl, r.ID)
		t.Fatalf("run ended %s at attempt %d (%+v); want COMPLETED at attempt 2", d.State, d.Attempt, d.Error)
	}
	var crashed bool
	for _, ev := range d.Events {
		if ev.TaskKey == "" && ev.From == "AWAITING_RETRY" && ev.To == "CRASHED" && ev.Cause == "lease" {
			crashed = true
		}
	}
	if !crashed {
		t.Errorf("no AWAITING_RETRY -> CRASHED event of cause lease: %+v", d.Events)
	}
	log, err := os.ReadFile(c.e.execLog)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("retrywait attempt 1 pid %d", first.Process.Pid),
		fmt.Sprintf("retrywait attempt 2 pid %d", second.Process.Pid),
	}
	for _, w := range want {
		if !strings.Contains(string(log), w) {
			t.Errorf("executions %q do not contain %q", log, w)
		}
	}
}

// TestLocalRunKilledDuringFlowRetryDelay: a local run whose process is
// killed (-9) while it waits out the flow's retry delay is CRASHED when
// anyone looks at it, and `retry` completes it, instead of it staying
// AWAITING_RETRY forever.
func TestLocalRunKilledDuringFlowRetryDelay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	delay := []string{"FLOW_RETRY_DELAY_MS=600000"}
	c := e.cmd(delay, "run", "retrywait")
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
	}()
	ids := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := startedRe.FindStringSubmatch(sc.Text()); m != nil {
				ids <- m[1]
			}
		}
	}()
	var id string
	select {
	case id = <-ids:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start")
	}
	state := func() string {
		t.Helper()
		r := e.run(nil, "runs", "show", id, "--json")
		var run struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
			t.Fatalf("runs show: %v\n%s%s", err, r.stdout, r.stderr)
		}
		return run.State
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := state()
		if st == "AWAITING_RETRY" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run is %s, want AWAITING_RETRY after its first attempt failed", st)
		}
	}
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if st := state(); st != "CRASHED" {
		t.Fatalf("run killed during its retry delay shows %s, want CRASHED", st)
	}
	r := e.run(delay, "retry", id)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "2" {
		t.Fatalf("retry: exit %d, result %q; want 0 and 2 (attempt 2 completes): %s", r.code, r.stdout, r.stderr)
	}
}
