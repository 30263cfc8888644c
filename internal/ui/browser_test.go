package ui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive real headless Chromium (Debian's chromium;
// scripts/with-chromium.sh installs it) against a real server on loopback.
// They skip only when no Chromium can be found: set BATON_CHROMIUM to its
// path when it is not on PATH. With BATON_REQUIRE_BROWSER=1 (CI) a missing
// Chromium fails them instead.

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
	path   string
}

// findChromium returns the path of a Chromium, or "".
func findChromium() string {
	if p := os.Getenv("BATON_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab returns a new browser tab, starting the shared browser once.
func tab(t *testing.T) context.Context {
	t.Helper()
	browser.once.Do(func() {
		browser.path = findChromium()
		if browser.path == "" {
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser.path),
			chromedp.NoSandbox, chromedp.Flag("headless", true), chromedp.DisableGPU, chromedp.WindowSize(1024, 900))
		alloc, _ := chromedp.NewExecAllocator(context.Background(), opts...)
		browser.ctx, browser.cancel = chromedp.NewContext(alloc)
		browser.err = chromedp.Do(browser.ctx) // start it
	})
	if browser.path == "" {
		if os.Getenv("BATON_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium found (BATON_REQUIRE_BROWSER is set): install Debian's chromium, e.g. with scripts/with-chromium.sh")
		}
		t.Skip("skipping the browser test: no Chromium found on PATH or in BATON_CHROMIUM; install Debian's chromium (scripts/with-chromium.sh does, as root)")
	}
	if browser.err != nil {
		t.Fatalf("start Chromium %s: %v", browser.path, browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx)
	ctx, cancel2 := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancel2(); cancel() })
	return ctx
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// run runs browser actions, failing the test with what the page shows.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main")?.innerText ?? ""`))
		t.Fatalf("%s: %v\npage:\n%s", what, err, body)
	}
}

// value runs an action that returns a value, failing the test on an error.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text is the text of the element sel selects.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	// One evaluation reads the text: no node ID to go stale while the
	// page loads or a stream event replaces the element.
	return value(t, ctx, "text of "+sel, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel)))
}

// until polls a JavaScript condition on the page.
func until(cond string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := poll(ctx, t)
		return chromedp.Void{}, err
	}
}

// eval evaluates JavaScript for its effect.
func eval(expr string) chromedp.Action[chromedp.Void] {
	e := chromedp.Evaluate[any](expr)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := e(ctx, t)
		return chromedp.Void{}, err
	}
}

// ready is the condition that the page's scripts have set it up (their
// handlers listen; app.js marks the document at DOMContentLoaded, which
// comes after every module script ran): a click before that would do what
// it does with scripts off.
const ready = `document.documentElement.dataset.ready === "true"`

// click clicks the element sel selects once the page's scripts are ready.
func click(sel string) chromedp.Action[chromedp.Void] {
	return onNode(chromedp.Click(chromedp.CSS(sel)))
}

// setValue sets the value of the field sel selects once the page's
// scripts are ready.
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	return onNode(chromedp.SetValue(chromedp.CSS(sel), v))
}

// onNode runs an action on an element once the page's scripts are ready.
// The element may go between its lookup and the action: a live page
// replaces it (the graph's table is redrawn as counts change), or the
// browser renumbers the nodes of a document just navigated to. The action
// is then made again on the element that took its place, as a person's
// would land.
func onNode(a chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	wait := until(ready)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := wait(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		for try := 1; ; try++ {
			v, err := a(ctx, t)
			if err == nil || try == 5 || !staleNode(err) {
				return v, err
			}
		}
	}
}

// staleNode reports whether err says that the node an action looked up is
// gone from the document.
func staleNode(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Could not find node") || strings.Contains(msg, "No node with given id")
}

// stateIs is the condition that the run page shows state (by its text).
func stateIs(state string) string {
	return fmt.Sprintf(`document.querySelector("#run-state .label")?.textContent === %q`, state)
}

// TestBrowserFailedRun: the dashboard lists a failed run with its error;
// its link opens the run page, which shows the error; its Retry button
// starts a new attempt, which the page follows.
func TestBrowserFailedRun(t *testing.T) {
	c := newCluster(t)
	id := c.create(t, failingFlow.Name(), "3")
	c.waitState(t, id, "FAILED")
	ctx := tab(t)
	run(t, ctx, "open the dashboard", chromedp.Navigate(c.url+"/"), chromedp.WaitVisible(chromedp.CSS("#h-failed")))
	dash, msg := text(t, ctx, "#h-failed"), text(t, ctx, ".failures li .error-message")
	if !strings.Contains(dash, "Failures of the last day 1") || !strings.Contains(msg, "the ledger does not balance") {
		t.Fatalf("dashboard: %q, %q", dash, msg)
	}
	run(t, ctx, "open the failed run", click(`.failures li a`), chromedp.WaitVisible(chromedp.CSS("#run-error-section")),
		until(stateIs("FAILED")))
	state, errText := text(t, ctx, "#run-state"), text(t, ctx, "#run-error")
	if !strings.Contains(state, "FAILED") || !strings.Contains(state, "✗") || !strings.Contains(errText, "the ledger does not balance") {
		t.Fatalf("run page: state %q, error %q", state, errText)
	}
	loc := value(t, ctx, "location", chromedp.Location())
	if !strings.HasSuffix(loc, "/runs/"+id) {
		t.Errorf("the link opened %s, want the run %s", loc, id)
	}
	// Retry from the page: the new attempt fails again, shown live.
	run(t, ctx, "retry it",
		click(`button[data-action="retry"]`),
		until(`document.getElementById("run-attempt").textContent === "2"`),
		until(stateIs("FAILED")),
		until(`document.getElementById("live-note").textContent.includes("finished")`))
	if d := c.waitState(t, id, "FAILED"); d.Attempt != 2 {
		t.Fatalf("after the retry the run is at attempt %d, want 2", d.Attempt)
	}
}

// TestBrowserCancel: a running run is cancelled from its page, which
// shows it CANCELLED without a reload.
func TestBrowserCancel(t *testing.T) {
	c := newCluster(t)
	id := c.create(t, gatedFlow.Name(), `{"gate":"`+newGate(t)+`"}`)
	c.waitState(t, id, "RUNNING")
	ctx := tab(t)
	run(t, ctx, "cancel from the run page",
		chromedp.Navigate(c.url+"/runs/"+id),
		until(stateIs("RUNNING")),
		until(`document.getElementById("live-note").textContent.startsWith("Live")`),
		eval(`window.notReloaded = true`),
		click(`button[data-action="cancel"]`),
		until(stateIs("CANCELLED")),
		until(`window.notReloaded === true`),
		until(`document.querySelector('button[data-action="cancel"]').hidden`))
	if d := c.waitState(t, id, "CANCELLED"); d.State != "CANCELLED" {
		t.Fatalf("run %s is %s", id, d.State)
	}
}

// TestBrowserAnswerInput: a run waiting for input is answered through the
// form generated from the input's JSON Schema on /inbox: bad input shows
// the form's checks (the field's bounds, then the whole schema, with the
// vendored validator), then the server's (with the browser's check turned
// off), then good input resumes the run.
func TestBrowserAnswerInput(t *testing.T) {
	c := newCluster(t)
	id := c.create(t, approvalFlow.Name(), "")
	c.waitPaused(t, id)
	ctx := tab(t)
	form := `form.wait-form[data-run="` + id + `"]`
	var errs string
	run(t, ctx, "bad input: below the minimum",
		chromedp.Navigate(c.url+"/inbox"),
		chromedp.WaitVisible(chromedp.CSS(form)),
		click(form+` input[name="approve"]`),
		setValue(form+` input[name="batch"]`, "0"),
		click(form+` button[type="submit"]`),
		until(`document.querySelector('`+form+` .form-errors').textContent.includes("batch")`))
	errs = text(t, ctx, form+" .form-errors")
	if !strings.Contains(errs, "1") {
		t.Errorf("browser-side error %q does not say the minimum", errs)
	}
	if a := value(t, ctx, "aria-invalid", chromedp.AttributeValue(chromedp.CSS(form+` input[name="batch"]`), "aria-invalid")); a.Value != "true" {
		t.Errorf("batch field aria-invalid = %q", a.Value)
	}
	run(t, ctx, "bad input: the schema refuses it in the browser",
		setValue(form+` input[name="batch"]`, "7"),
		click(form+` button[type="submit"]`),
		until(`document.querySelector('`+form+` .form-errors').textContent.includes("multiple of 5")`))
	if errs = text(t, ctx, form+" .form-errors"); !strings.Contains(errs, "batch") {
		t.Errorf("schema error %q does not name the field", errs)
	}
	// The server checks again: input the browser did not check is refused
	// with the server's message, shown in the form.
	run(t, ctx, "bad input: the server refuses it",
		eval(`document.querySelector('`+form+`').dataset.schema = ""`),
		click(form+` button[type="submit"]`),
		until(`document.querySelector('`+form+` .server-error')?.textContent.includes("/batch")`))
	if errs = text(t, ctx, form+" .form-errors"); !strings.Contains(errs, "refused") {
		t.Errorf("server-side error %q", errs)
	}
	if d, err := c.c.GetRun(context.Background(), id); err != nil || d.State != "PAUSED" {
		t.Fatalf("after refused input the run is %s (%v), want PAUSED", d.State, err)
	}
	run(t, ctx, "good input",
		setValue(form+` input[name="batch"]`, "10"),
		click(form+` button[type="submit"]`),
		until(`document.querySelector('`+form+` .form-status').textContent.includes("resumes")`))
	d := c.waitState(t, id, "COMPLETED")
	if strings.TrimSpace(string(d.Result)) != "20" {
		t.Fatalf("result %s, want 20 (the batch doubled)", d.Result)
	}
}

// TestBrowserLive: the run page follows a run to its end without a reload:
// state, task-run counts and new log lines.
func TestBrowserLive(t *testing.T) {
	c := newCluster(t)
	name := newGate(t)
	id := c.create(t, gatedFlow.Name(), `{"gate":"`+name+`"}`)
	c.waitState(t, id, "RUNNING")
	ctx := tab(t)
	run(t, ctx, "open the running run",
		chromedp.Navigate(c.url+"/runs/"+id),
		until(stateIs("RUNNING")),
		until(`document.getElementById("live-note").textContent.startsWith("Live")`),
		until(`document.getElementById("log-lines").textContent.includes("before the gate")`),
		eval(`window.notReloaded = true`))
	close(gate(name))
	run(t, ctx, "watch it complete",
		until(stateIs("COMPLETED")),
		until(`document.getElementById("log-lines").textContent.includes("after the gate")`),
		until(`document.getElementById("live-note").textContent.includes("finished")`),
		until(`window.notReloaded === true`))
	logs, counts, result := text(t, ctx, "#log-lines"), text(t, ctx, "#counts-body"), text(t, ctx, "#run-result")
	if strings.Count(logs, "before the gate") != 1 {
		t.Errorf("log lines shown twice: %q", logs)
	}
	if !strings.Contains(counts, gatedStep.Name()) || !strings.Contains(counts, "COMPLETED") || strings.Contains(counts, "RUNNING") {
		t.Errorf("counts %q: want the gated step COMPLETED", counts)
	}
	if !strings.Contains(result, "opened "+name) {
		t.Errorf("result %q", result)
	}
}

// TestBrowserRunsListLive: the runs list updates a run's state live.
func TestBrowserRunsListLive(t *testing.T) {
	c := newCluster(t)
	name := newGate(t)
	id := c.create(t, gatedFlow.Name(), `{"gate":"`+name+`"}`)
	c.waitState(t, id, "RUNNING")
	ctx := tab(t)
	cell := `document.querySelector('tr[data-run="` + id + `"] .state-cell .label').textContent`
	run(t, ctx, "open the list",
		chromedp.Navigate(c.url+"/runs?flow="+gatedFlow.Name()),
		until(cell+` === "RUNNING"`),
		until(`document.querySelector(".live-note").dataset.live === "open"`),
		eval(`window.notReloaded = true`))
	close(gate(name))
	run(t, ctx, "see it complete", until(cell+` === "COMPLETED"`), until(`window.notReloaded === true`))
	// A narrow window keeps the page usable (no horizontal scrolling of the page).
	run(t, ctx, "narrow window", chromedp.EmulateViewport(360, 700))
	wide := value(t, ctx, "page width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if wide {
		t.Errorf("the runs page scrolls sideways in a 360px window")
	}
}
