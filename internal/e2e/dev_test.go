package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// devStart starts `baton dev` on db and waits until it serves at url.
func devStart(c *cluster, db string) (cl *client.Client, url string, kill func()) {
	addr := freePort(c.t)
	p := c.start(batonBin, "dev", "--db", db, "--addr", addr, "--lease-timeout", "60s")
	cl, err := client.New("http://" + addr)
	if err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ws, err := cl.Workers(context.Background()); err == nil && len(ws) > 0 {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("baton dev on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cl, "http://" + addr, func() {
		if err := p.Process.Signal(syscall.SIGKILL); err != nil {
			c.t.Fatal(err)
		}
		p.Wait()
	}
}

// TestDevKilledAndRestartedResumesAtOnce: after kill -9 of `baton dev`, a
// `baton dev` started again on the same store takes back the runs its dead
// worker held at once, instead of waiting for their lease (60s here).
func TestDevKilledAndRestartedResumesAtOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	db := filepath.Join(c.e.home, "dev.db")
	cl, _, kill := devStart(c, db)
	ctx := context.Background()
	// The ETL example's flaky load step retries for about 1.4s with 3 outages.
	params, _ := json.Marshal(map[string]any{"outage": 3, "out": filepath.Join(c.e.home, "warehouse")})
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: "etl", Parameters: params})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := cl.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.State == "RUNNING" {
			break
		}
		if d.State == "COMPLETED" || time.Now().After(deadline) {
			t.Fatalf("run is %s before baton dev could be killed", d.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	kill()

	restarted := time.Now()
	cl, _, _ = devStart(c, db)
	for {
		d, err := cl.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.State == "COMPLETED" {
			if d.Attempt != 2 {
				t.Errorf("run completed at attempt %d, want 2", d.Attempt)
			}
			break
		}
		if time.Since(restarted) > 20*time.Second {
			t.Fatalf("run is still %s %s after the restart (its lease is 60s): the dead worker's runs were not taken back",
				d.State, time.Since(restarted).Round(time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("completed %s after the restart", time.Since(restarted).Round(time.Millisecond))
}
