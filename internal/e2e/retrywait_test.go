package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
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
	r, _, err := cl.CreateRun(context.Background(), api.CreateRun{Flow: "retrywait"})
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
