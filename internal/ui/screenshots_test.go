package ui_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/batonhq/baton/apitype"
)

// TestScreenshots saves PNG screenshots of the main pages, over sample
// data made by real runs on a real worker, into $BATON_SCREENSHOTS_DIR
// (make ui-screenshots: docs/ui). Skipped when that is not set.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("BATON_SCREENSHOTS_DIR")
	if dir == "" {
		t.Skip("BATON_SCREENSHOTS_DIR is not set (make ui-screenshots sets it)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	ctx0 := context.Background()
	g := newGate(t)
	defer close(gate(g))
	if _, err := c.c.SetLimit(ctx0, labTag, 2); err != nil {
		t.Fatal(err)
	}
	anchor := time.Now().UTC().Truncate(time.Hour)
	if _, err := c.c.CreateDeployment(ctx0, apitype.DeploymentRequest{Name: "lab-hourly", Flow: labFlow.Name(),
		Description: "runs the lab's plates every hour", Parameters: []byte(`{"gate":"` + g + `"}`), Tags: []string{"lab"},
		Schedules: []apitype.ScheduleRequest{{Interval: "1h", Anchor: &anchor}, {Cron: "30 6 * * 1-5", Timezone: "Europe/Paris"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.c.CreateDeployment(ctx0, apitype.DeploymentRequest{Name: "gated-adhoc", Flow: gatedFlow.Name(),
		Description: "started by hand"}); err != nil {
		t.Fatal(err)
	}
	lab, err := c.c.RunDeployment(ctx0, "lab-hourly", apitype.DeploymentRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var failed string
	for i := range 3 {
		failed = c.create(t, failingFlow.Name(), "1"+string(rune('0'+i)))
	}
	c.waitState(t, failed, "FAILED")
	done := c.create(t, gatedFlow.Name(), `{"gate":"`+g+`-open"}`)
	close(gate(g + "-open"))
	c.waitState(t, done, "COMPLETED")
	running := c.create(t, gatedFlow.Name(), `{"gate":"`+g+`"}`)
	paused := c.create(t, approvalFlow.Name(), "")
	c.waitPaused(t, paused)
	c.waitState(t, running, "RUNNING")
	c.waitState(t, lab.ID, "RUNNING")

	ctx := tab(t)
	for _, p := range []struct{ name, path, ready string }{
		{"dashboard", "/", `document.getElementById("runs-chart").dataset.drawn === "true"`},
		{"runs", "/runs", ready},
		{"run", "/runs/" + failed, ready},
		{"inbox", "/inbox", ready},
		{"deployments", "/deployments", ready},
		{"deployment", "/deployments/lab-hourly", ready},
		{"workers", "/workers", ready},
		{"limits", "/limits", ready},
		{"queues", "/queues", ready},
		{"flows", "/flows", ready},
		{"flow", "/flows/" + gatedFlow.Name(), ready},
	} {
		run(t, ctx, "open "+p.path, chromedp.Navigate(c.url+p.path), until(ready), until(p.ready))
		png := value(t, ctx, "screenshot of "+p.path, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, p.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s (%d bytes)", p.path, p.name+".png", len(png))
	}
}
