package ui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

type platesParams struct {
	Plates int    `json:"plates" jsonschema:"minimum=1,maximum=96,description=How many plates to prepare"`
	Label  string `json:"label" jsonschema:"enum=assay,enum=control"`
	Note   string `json:"note,omitempty"`
}

// platesFlow has a parameter schema with bounds and defaults, which the
// flow page shows and makes its run-now form from.
var platesFlow = baton.Flow("ui-test.plates", func(ctx baton.Context, p platesParams) (string, error) {
	return fmt.Sprintf("%d %s plates", p.Plates, p.Label), nil
}, baton.Defaults(platesParams{Plates: 4, Label: "assay"}))

func init() { extraFlows = append(extraFlows, platesFlow) }

// registered waits until the cluster's worker has registered flow.
func (c *cluster) registered(t *testing.T, flow string) apitype.Flow {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := c.c.GetFlow(context.Background(), flow)
		if err == nil {
			return f
		}
		if !client.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("flow %s not registered: %v", flow, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFlowPagesWithoutScripts: /flows lists every registered flow with its
// deployments and a link to its runs; /flows/{name} shows its parameters
// from the schema (type, bounds, defaults), its deployments with their next
// fire, its latest runs and the run-now form made from the schema, all in
// the first HTML; an unknown flow is a 404 page.
func TestFlowPagesWithoutScripts(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	c.registered(t, platesFlow.Name())
	anchor := time.Date(2030, 1, 1, 6, 0, 0, 0, time.UTC)
	if _, err := c.c.CreateDeployment(ctx, apitype.DeploymentRequest{Name: "plates-daily", Flow: platesFlow.Name(),
		Schedules: []apitype.ScheduleRequest{{Interval: "24h", Anchor: &anchor}}}); err != nil {
		t.Fatal(err)
	}
	id := c.create(t, platesFlow.Name(), `{"plates":7}`)
	c.waitState(t, id, "COMPLETED")
	next, err := c.c.NextDeployment(ctx, "plates-daily", 1)
	if err != nil || len(next.Fires) != 1 {
		t.Fatalf("next fires: %+v %v", next, err)
	}

	_, _, body := get(t, c.url, "/flows")
	mustContain(t, "flows", body, `<tr data-flow="`+platesFlow.Name()+`">`, `href="/flows/`+platesFlow.Name()+`"`,
		`href="/deployments/plates-daily"`, `href="/runs?flow=`+platesFlow.Name()+`"`, `<tr data-flow="`+failingFlow.Name()+`">`,
		`aria-current="page">Flows</a>`, "schema registered")

	_, _, body = get(t, c.url, "/flows/"+platesFlow.Name())
	mustContain(t, "flow", body, "Flow "+platesFlow.Name(),
		`<tr data-param="plates">`, "integer", "at least 1", "at most 96", "How many plates to prepare", "<code>4</code>",
		`<tr data-param="label">`, "one of <code>assay</code>, <code>control</code>", `<tr data-param="note">`, "optional",
		"JSON Schema", `&#34;plates&#34;: 4`,
		`data-api="/api/v1/runs"`, `data-flow="`+platesFlow.Name()+`"`, `name="plates"`, `value="4"`, `min="1"`, `max="96"`,
		`<label for="run-flow-ui-test_plates-f`, "Run now",
		`<tr data-deployment="plates-daily">`, next.Fires[0].At.UTC().Format("2006-01-02 15:04:05Z"),
		`<tr data-run="`+id+`">`, `href="/runs?flow=`+platesFlow.Name()+`"`)
	if status, _, body := get(t, c.url, "/flows/nope"); status != 404 || !strings.Contains(body, "nope") {
		t.Errorf("unknown flow: %d %s", status, body)
	}
	if status, _, _ := get(t, c.url, "/flows/"+failingFlow.Name()); status != 200 {
		t.Errorf("flow with a scalar parameter: %d", status)
	}
}

// TestBrowserRunFlow: from /flows, open a flow, see a bad parameter refused
// in the browser before anything is sent, then run it with an edited
// parameter and follow the link to the new run, which completes with it.
func TestBrowserRunFlow(t *testing.T) {
	c := newCluster(t)
	c.registered(t, platesFlow.Name())
	ctx := tab(t)
	plates := `form.params-form input[name="plates"]`
	run(t, ctx, "open the flow from /flows", chromedp.Navigate(c.url+"/flows"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-flow="`+platesFlow.Name()+`"]`)),
		click(`a[href="/flows/`+platesFlow.Name()+`"]`),
		chromedp.WaitVisible(chromedp.CSS(plates)))
	if v := value(t, ctx, "plates field", chromedp.Evaluate[string](`document.querySelector('`+plates+`').value`)); v != "4" {
		t.Errorf("the plates field starts at %q, want the flow's default 4", v)
	}
	run(t, ctx, "a bad value is refused in the browser", setValue(plates, "200"),
		click(`form.params-form button[type=submit]`),
		until(`document.querySelector("form.params-form .form-errors li") !== null`))
	if msg := text(t, ctx, "form.params-form .form-errors"); !strings.Contains(msg, "plates") {
		t.Errorf("the form's error %q does not name the parameter", msg)
	}
	if runs, err := c.c.ListRuns(context.Background(), client.ListRunsParams{Flow: platesFlow.Name()}); err != nil || len(runs) != 0 {
		t.Fatalf("a refused form created runs: %v %v", runs, err)
	}
	run(t, ctx, "run now with an edited parameter", setValue(plates, "12"),
		click(`form.params-form button[type=submit]`),
		until(`document.querySelector("form.params-form a.new-run") !== null`))
	id := value(t, ctx, "new run", chromedp.Evaluate[string](`document.querySelector("form.params-form a.new-run").textContent`))
	run(t, ctx, "open the new run", click(`form.params-form a.new-run`), chromedp.WaitVisible(chromedp.CSS("#run-state")))
	run(t, ctx, "the new run completes", until(stateIs("COMPLETED")))
	d := c.waitState(t, id, "COMPLETED")
	if d.Flow != platesFlow.Name() || string(d.Result) != `"12 assay plates"` {
		t.Errorf("run now made run %s of flow %s with result %s; want %s's 12 assay plates", id, d.Flow, d.Result, platesFlow.Name())
	}
}
