package ui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// TestBrowserBulkRetry: two failed runs are selected on the runs list and
// retried at once; the list shows their new attempts fail again, live.
func TestBrowserBulkRetry(t *testing.T) {
	c := newCluster(t)
	a, b := c.create(t, failingFlow.Name(), "1"), c.create(t, failingFlow.Name(), "2")
	other := c.create(t, failingFlow.Name(), "3")
	for _, id := range []string{a, b, other} {
		c.waitState(t, id, "FAILED")
	}
	ctx := tab(t)
	sel := func(id string) string { return fmt.Sprintf(`input.select-run[value=%q]`, id) }
	run(t, ctx, "select two failed runs and retry them",
		chromedp.Navigate(c.url+"/runs?state=FAILED&flow="+failingFlow.Name()),
		chromedp.WaitVisible(chromedp.CSS(sel(a))),
		until(`document.querySelector('button[data-bulk="retry"]').disabled`),
		click(sel(a)), click(sel(b)),
		until(`document.querySelector(".bulk-count").textContent === "2 selected"`),
		until(`!document.querySelector('button[data-bulk="retry"]').disabled`),
		eval(`window.notReloaded = true`),
		click(`button[data-bulk="retry"]`),
		until(`document.querySelector(".bulk-done")?.textContent === "Retried 2 of 2 runs."`),
		until(`window.notReloaded === true`))
	for _, id := range []string{a, b} {
		d := c.wait(t, id, "FAILED at attempt 2", func(d apitype.RunDetail) bool { return d.State == "FAILED" && d.Attempt == 2 })
		if d.Attempt != 2 {
			t.Errorf("run %s at attempt %d after the bulk retry", id, d.Attempt)
		}
	}
	if d := c.waitState(t, other, "FAILED"); d.Attempt != 1 {
		t.Errorf("the run not selected was retried: attempt %d", d.Attempt)
	}
	// Retrying a run that is not finished is refused by the API, per run.
	gated := c.create(t, gatedFlow.Name(), `{"gate":"`+newGate(t)+`"}`)
	c.waitState(t, gated, "RUNNING")
	run(t, ctx, "a refused retry is reported",
		chromedp.Navigate(c.url+"/runs?flow="+gatedFlow.Name()),
		chromedp.WaitVisible(chromedp.CSS(sel(gated))),
		click(sel(gated)),
		click(`button[data-bulk="retry"]`),
		until(`document.querySelector(".bulk-done")?.textContent === "Retried 0 of 1 run."`),
		until(`document.querySelector(".bulk-errors li")?.textContent.includes(`+fmt.Sprintf("%q", gated[:8])+`)`))
	run(t, ctx, "bulk cancel",
		click(sel(gated)),
		click(`button[data-bulk="cancel"]`),
		until(`document.querySelector(".bulk-done")?.textContent === "Cancel requested for 1 of 1 run."`),
		until(fmt.Sprintf(`document.querySelector('tr[data-run=%q] .state')?.dataset.state === "CANCELLED"`, gated)))
}

// TestBrowserDeployment: the deployments page lists a deployment with its
// next fire; its page shows the next fire times and the parameters form
// made from the flow's schema, and "Run now" creates a run of it; pausing
// it shows it paused.
func TestBrowserDeployment(t *testing.T) {
	c := newCluster(t)
	ctx0 := context.Background()
	g := newGate(t)
	defer close(gate(g))
	anchor := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	dep, err := c.c.CreateDeployment(ctx0, apitype.DeploymentRequest{Name: "ui-nightly", Flow: gatedFlow.Name(),
		Parameters: []byte(`{"gate":"` + g + `"}`), Tags: []string{"ui-prod"},
		Schedules: []apitype.ScheduleRequest{{Interval: "1h", Anchor: &anchor}}})
	if err != nil {
		t.Fatal(err)
	}
	next, err := c.c.NextDeployment(ctx0, dep.Name, 10)
	if err != nil || len(next.Fires) != 10 {
		t.Fatalf("next fires: %+v %v", next, err)
	}
	ctx := tab(t)
	run(t, ctx, "open the deployments", chromedp.Navigate(c.url+"/deployments"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-deployment="ui-nightly"]`)))
	row := text(t, ctx, `tr[data-deployment="ui-nightly"]`)
	if !strings.Contains(row, gatedFlow.Name()) || !strings.Contains(row, "Active") || !strings.Contains(row, next.Fires[0].At.UTC().Format("2006-01-02 15:04:05Z")) {
		t.Errorf("deployments row: %q; want the flow, Active and the next fire %s", row, next.Fires[0].At)
	}
	run(t, ctx, "open the deployment", click(`a[href="/deployments/ui-nightly"]`), chromedp.WaitVisible(chromedp.CSS("#fires")))
	fires := text(t, ctx, "#fires")
	for _, f := range next.Fires {
		if want := f.At.UTC().Format("2006-01-02 15:04:05Z"); !strings.Contains(fires, want) {
			t.Errorf("next fire times %q lack %s", fires, want)
		}
	}
	gateField := `form.params-form input[name="gate"]`
	if v := value(t, ctx, "gate field", chromedp.Evaluate[string](`document.querySelector('`+gateField+`').value`)); v != g {
		t.Errorf("the run-now form's gate field is %q, want the deployment's %q", v, g)
	}
	run(t, ctx, "run now", click(`form.params-form button[type=submit]`),
		until(`document.querySelector("form.params-form a.new-run") !== null`))
	id := value(t, ctx, "new run", chromedp.Evaluate[string](`document.querySelector("form.params-form a.new-run").textContent`))
	d := c.waitState(t, id, "RUNNING")
	if d.Deployment != "ui-nightly" {
		t.Errorf("run now made run %s of deployment %q", id, d.Deployment)
	}
	runs, err := c.c.ListRuns(ctx0, client.ListRunsParams{Tag: "ui-prod"})
	if err != nil || len(runs) == 0 || runs[0].ID != id {
		t.Errorf("runs tagged ui-prod: %+v %v; want %s first", runs, err, id)
	}
	// Backfill the two fire times of (anchor-3h, anchor-1h]: the scheduler
	// may have made the latest missed one already.
	local := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }
	// (chromedp.SetValue refuses datetime-local fields: set them as a script would.)
	run(t, ctx, "backfill", eval(fmt.Sprintf(`document.querySelector("#bf-from").value = %q; document.querySelector("#bf-to").value = %q`,
		local(anchor.Add(-3*time.Hour)), local(anchor.Add(-time.Hour)))),
		click(`form[data-kind="backfill"] button[type=submit]`),
		until(`/^Created \d+ runs?; \d+ existed already\./.test(document.querySelector('form[data-kind="backfill"] .form-status').textContent)`))
	var created, existed int
	bf := text(t, ctx, `form[data-kind="backfill"] .form-status`)
	if _, err := fmt.Sscanf(strings.Replace(bf, "run;", "runs;", 1), "Created %d runs; %d existed", &created, &existed); err != nil || created+existed != 2 {
		t.Errorf("backfill said %q (%v); want 2 fire times in all", bf, err)
	}
	planned, err := c.c.ListRuns(ctx0, client.ListRunsParams{Deployment: "ui-nightly", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	fired := map[time.Time]bool{}
	for _, r := range planned {
		fired[r.ScheduledAt.UTC()] = true
	}
	if !fired[anchor.Add(-2*time.Hour)] || !fired[anchor.Add(-time.Hour)] {
		t.Errorf("after the backfill the runs of ui-nightly are planned at %v", fired)
	}
	// Pause one schedule from its row: the page reloads showing it paused.
	run(t, ctx, "pause the schedule", click(`tr[data-schedule] button.api-button`))
	reloaded(t, ctx, "tr[data-schedule]", "Paused")
	if dep, err := c.c.GetDeployment(ctx0, "ui-nightly"); err != nil || !dep.Schedules[0].Paused || dep.Paused {
		t.Errorf("after pausing the schedule: %+v %v", dep, err)
	}
	run(t, ctx, "pause it", until(ready), setValue("#dep-note", "lab closed"),
		click(`section.actions form.api-form button[type=submit]`))
	// The page reloads once the deployment is paused.
	st := reloaded(t, ctx, "#deployment-status", "Paused")
	if !strings.Contains(st, "lab closed") {
		t.Errorf("status after the pause: %q", st)
	}
	if dep, err := c.c.GetDeployment(ctx0, "ui-nightly"); err != nil || !dep.Paused || dep.PauseNote != "lab closed" {
		t.Errorf("after the pause: %+v %v", dep, err)
	}
}

// TestBrowserWorkersAndLimits: the workers page shows the live worker with
// the run it holds; the limits page shows who holds the limit's slot.
func TestBrowserWorkersAndLimits(t *testing.T) {
	c := newCluster(t)
	ctx0 := context.Background()
	if _, err := c.c.SetLimit(ctx0, labTag, 2); err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	defer close(gate(g))
	id := c.create(t, labFlow.Name(), `{"gate":"`+g+`"}`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ls, err := c.c.Limits(ctx0)
		if err == nil && len(ls) == 1 && len(ls[0].Holders) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lab step holds no slot: %+v %v", ls, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx := tab(t)
	run(t, ctx, "open the limits", chromedp.Navigate(c.url+"/limits"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-limit=%q]`, labTag))))
	lim := text(t, ctx, fmt.Sprintf(`[data-limit=%q]`, labTag))
	for _, want := range []string{"1 of 2 slots held", id[:8], labStep.Name()} {
		if !strings.Contains(lim, want) {
			t.Errorf("limits page %q lacks %q", lim, want)
		}
	}
	run(t, ctx, "open the workers", click(`a[href="/workers"]`), chromedp.WaitVisible(chromedp.CSS("table.workers")))
	wk := text(t, ctx, "table.workers tbody")
	for _, want := range []string{t.Name(), id[:8], "1 of 4 run slots"} {
		if !strings.Contains(wk, want) {
			t.Errorf("workers page %q lacks %q", wk, want)
		}
	}
}

// reloaded waits, across the reload of the page, until the element sel
// selects says want, and returns its text.
func reloaded(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel)))
		if err == nil && strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q after 30s (%v), want %q", sel, got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserNarrow: in a narrow window (380 px) no page is wider than the
// window (wide tables scroll in their own box), and the navigation is
// reachable with the keyboard: Tab from the top reaches the skip link,
// then every section's link.
func TestBrowserNarrow(t *testing.T) {
	c := newCluster(t)
	failed := c.create(t, failingFlow.Name(), "1")
	c.waitState(t, failed, "FAILED")
	if _, err := c.c.CreateDeployment(context.Background(), apitype.DeploymentRequest{Name: "narrow", Flow: gatedFlow.Name(),
		Schedules: []apitype.ScheduleRequest{{Cron: "@hourly"}}}); err != nil {
		t.Fatal(err)
	}
	ctx := tab(t)
	run(t, ctx, "narrow window", chromedp.EmulateViewport(380, 800))
	for _, p := range []string{"/", "/runs", "/runs/" + failed, "/inbox", "/deployments", "/deployments/narrow", "/workers", "/limits", "/queues"} {
		run(t, ctx, "open "+p, chromedp.Navigate(c.url+p), until(ready))
		if p == "/" { // the chart is drawn from GET /api/v1/stats/runs
			run(t, ctx, "the chart", until(`document.getElementById("runs-chart").dataset.drawn === "true" && document.querySelector("#runs-chart canvas") !== null`),
				until(`document.querySelector("#runs-chart .u-legend")?.textContent.includes("FAILED")`))
		}
		w := value(t, ctx, "widths of "+p, chromedp.Evaluate[string](`document.documentElement.scrollWidth + " " + window.innerWidth`))
		var sw, iw int
		fmt.Sscan(w, &sw, &iw)
		if sw > iw {
			t.Errorf("%s is %d px wide in a %d px window", p, sw, iw)
		}
	}
	run(t, ctx, "keyboard", chromedp.Navigate(c.url+"/runs"), until(ready))
	var seen []string
	for range 10 {
		run(t, ctx, "tab", chromedp.KeyEvent("\t"))
		seen = append(seen, value(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.getAttribute("href") || document.activeElement.id`)))
	}
	want := []string{"#main", "/", "/", "/runs", "/inbox", "/flows", "/deployments", "/queues", "/workers", "/limits"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("Tab focuses %v, want %v", seen, want)
	}
}
