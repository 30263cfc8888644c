package ui_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
)

// TestOpsPagesWithoutScripts: the deployments, workers, limits and queues
// pages and the runs list's new filters say in their first HTML what their
// JSON twins have; bad filters and unknown deployments are error pages.
func TestOpsPagesWithoutScripts(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	g := newGate(t)
	defer close(gate(g))
	if _, err := c.c.SetLimit(ctx, labTag, 3); err != nil {
		t.Fatal(err)
	}
	anchor := time.Date(2030, 1, 1, 6, 0, 0, 0, time.UTC)
	if _, err := c.c.CreateDeployment(ctx, apitype.DeploymentRequest{Name: "lab-daily", Flow: labFlow.Name(), Description: "the lab's daily run",
		Parameters: []byte(`{"gate":"` + g + `"}`), Tags: []string{"lab"},
		Schedules: []apitype.ScheduleRequest{{Interval: "24h", Anchor: &anchor}}}); err != nil {
		t.Fatal(err)
	}
	run, err := c.c.RunDeployment(ctx, "lab-daily", apitype.DeploymentRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	other := c.create(t, failingFlow.Name(), "1")
	c.waitState(t, other, "FAILED")
	c.waitState(t, run.ID, "RUNNING")

	next, err := c.c.NextDeployment(ctx, "lab-daily", 2)
	if err != nil || len(next.Fires) != 2 {
		t.Fatalf("next fires: %+v %v", next, err)
	}
	fire := func(i int) string { return next.Fires[i].At.UTC().Format("2006-01-02 15:04:05Z") }
	_, _, body := get(t, c.url, "/deployments")
	mustContain(t, "deployments", body, `<tr data-deployment="lab-daily">`, labFlow.Name(), "the lab&#39;s daily run", "Active", `href="/runs?tag=lab"`, fire(0))
	_, _, body = get(t, c.url, "/deployments/lab-daily")
	mustContain(t, "deployment", body, "Deployment lab-daily", `id="fires"`, fire(0), fire(1),
		`name="gate"`, `value="`+g+`"`, "Run now", "Backfill", `data-api="/api/v1/deployments/lab-daily/pause"`,
		`<tr data-run="`+run.ID+`">`, `"gate"`)
	if status, _, body := get(t, c.url, "/deployments/nope"); status != 404 || !strings.Contains(body, "nope") {
		t.Errorf("unknown deployment: %d %s", status, body)
	}

	_, _, body = get(t, c.url, "/runs?deployment=lab-daily")
	row := func(id string) string { return `<tr data-run="` + id + `">` }
	mustContain(t, "runs?deployment=", body, row(run.ID), `value="lab-daily"`, `class="select-run"`, "Retry selected")
	if strings.Contains(body, row(other)) {
		t.Errorf("runs?deployment=lab-daily lists the run %s of no deployment", other)
	}
	_, _, body = get(t, c.url, "/runs?tag=lab")
	mustContain(t, "runs?tag=lab", body, row(run.ID))
	future := url.QueryEscape(time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04"))
	_, _, body = get(t, c.url, "/runs?created_from="+future)
	mustContain(t, "runs?created_from=future", body, "No run matches.", `value="`+time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")+`"`)
	_, _, body = get(t, c.url, "/runs?created_to="+future+"&state=FAILED")
	mustContain(t, "runs?created_to=future&state=FAILED", body, row(other))
	if status, _, body := get(t, c.url, "/runs?created_from=soon"); status != 400 || !strings.Contains(body, "created_from") {
		t.Errorf("runs?created_from=soon: %d %s; want a 400 page naming the parameter", status, body)
	}

	_, _, body = get(t, c.url, "/limits")
	mustContain(t, "limits", body, `data-limit="`+labTag+`"`, "1</span> of 3 slots held", run.ID[:8], labStep.Name())
	_, _, body = get(t, c.url, "/workers")
	mustContain(t, "workers", body, "Workers alive <span class=\"n\">1</span>", t.Name(), run.ID[:8], "run slots")
	_, _, body = get(t, c.url, "/queues")
	mustContain(t, "queues", body, `<tr data-queue="default">`, "Active", `data-api="/api/v1/queues/default/pause"`)
	_, _, body = get(t, c.url, "/")
	mustContain(t, "dashboard", body, "Runs of the last day by state", `data-stats="/api/v1/stats/runs?bucket=1h&amp;since=24h"`,
		`<th scope="col"><span class="state s-failed"`, "Late <span", "Awaiting a slot <span", `href="/deployments"`, `href="/limits"`)
}
