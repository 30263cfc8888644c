package ui_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/chromedp/chromedp"
)

// The flows of the run detail's tests.

type plateParams struct {
	Plates int    `json:"plates" jsonschema:"minimum=1,description=How many plates to count"`
	Label  string `json:"label"`
}

var labelStep = baton.Task("ui-test.label", func(_ context.Context, label string) (string, error) { return "label " + label, nil })

var countStep = baton.Task("ui-test.count-plates", func(ctx context.Context, n int) (int, error) {
	if n > 10 {
		return 0, baton.Permanent(fmt.Errorf("too many plates: %d", n))
	}
	baton.Logger(ctx).Info("counted the plates", "n", n)
	return n * 2, nil
})

// pickyFlow fails for more than 10 plates: a retry with fewer completes.
var pickyFlow = baton.Flow("ui-test.picky", func(ctx baton.Context, p plateParams) (int, error) {
	if _, err := labelStep.Run(ctx, p.Label); err != nil {
		return 0, err
	}
	return countStep.Run(ctx, p.Plates)
})

// chattyLines is how many lines chattyFlow logs: more than a page.
const chattyLines = 300

var chattyStep = baton.Task("ui-test.chatty-step", func(ctx context.Context, _ int) (int, error) {
	log := baton.Logger(ctx)
	for i := range chattyLines {
		if i%50 == 49 {
			log.Warn(fmt.Sprintf("chatty warning %03d", i))
		} else {
			log.Info(fmt.Sprintf("chatty line %03d", i))
		}
	}
	return chattyLines, nil
})

var chattyFlow = baton.Flow("ui-test.chatty", func(ctx baton.Context, n int) (int, error) {
	return chattyStep.Run(ctx, n)
})

// pausableFlow runs its gated step, then one more: the boundary before
// that one is where a pause asked for meanwhile takes effect.
var pausableFlow = baton.Flow("ui-test.pausable", func(ctx baton.Context, p gateParams) (int, error) {
	if _, err := gatedStep.Run(ctx, p); err != nil {
		return 0, err
	}
	return quickStep.Run(ctx, 21)
})

func init() { extraFlows = append(extraFlows, pickyFlow, chattyFlow, pausableFlow) }

// chattyRun runs chattyFlow to its end with all its lines recorded.
func chattyRun(t *testing.T, c *cluster) string {
	t.Helper()
	id := c.create(t, chattyFlow.Name(), "1")
	c.waitState(t, id, "COMPLETED")
	logs, err := c.c.RunLogs(context.Background(), id, "")
	if err != nil || len(logs) < chattyLines {
		t.Fatalf("run %s: %d log lines, %v", id, len(logs), err)
	}
	return id
}

// TestRunPagesWithoutScripts: the run page searches and filters its logs
// with a GET form (a line past the first page is found; a bad level is a
// 400 page naming the parameter), shows its history and, once retried,
// the comparison of its attempts; the task run page shows a task run's
// input, output, tries and logs.
func TestRunPagesWithoutScripts(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	id := chattyRun(t, c)
	_, _, body := get(t, c.url, "/runs/"+id)
	mustContain(t, "run page", body, `id="log-filter"`, "chatty line 000", "Next log lines", "/logs/download",
		`<span class="action">created</span>`, `<span class="action">completed</span>`)
	if strings.Contains(body, "chatty line 250") {
		t.Fatalf("line 250 is on the first page: the test does not test paging")
	}
	_, _, body = get(t, c.url, "/runs/"+id+"?logs_q="+url.QueryEscape("LINE 250"))
	mustContain(t, "searched run page", body, "chatty line 250", `data-filtered="true"`, "/logs/download?q=LINE&#43;250")
	if strings.Contains(body, "chatty line 000") {
		t.Errorf("the search shows lines that do not match")
	}
	_, _, body = get(t, c.url, "/runs/"+id+"?logs_level=warn")
	if n := strings.Count(body, "chatty warning"); n != chattyLines/50 || strings.Contains(body, "chatty line") {
		t.Errorf("logs_level=warn: %d warnings shown, lines %v", n, strings.Contains(body, "chatty line"))
	}
	if status, _, body := get(t, c.url, "/runs/"+id+"?logs_level=LOUD"); status != 400 || !strings.Contains(body, `logs_level`) {
		t.Errorf("logs_level=LOUD: %d %s", status, body)
	}

	failed := c.create(t, pickyFlow.Name(), `{"plates":12,"label":"A"}`)
	c.waitState(t, failed, "FAILED")
	d, err := c.c.GetRun(context.Background(), failed)
	if err != nil {
		t.Fatal(err)
	}
	var countID string
	for _, tr := range d.TaskRuns {
		if tr.Task == countStep.Name() {
			countID = tr.ID
		}
	}
	_, _, body = get(t, c.url, "/runs/"+failed)
	mustContain(t, "failed run page", body, "too many plates: 12", `name="plates"`, `value="12"`, `min="1"`,
		"Retry with edited parameters", "/runs/"+failed+"/tasks/"+countID)
	_, _, body = get(t, c.url, "/runs/"+failed+"/tasks/"+countID)
	mustContain(t, "task run page", body, countStep.Name(), "too many plates: 12", `data-state="FAILED"`, "<pre>12</pre>", "Tries")
	if status, _, _ := get(t, c.url, "/runs/"+failed+"/tasks/nope"); status != 404 {
		t.Errorf("an unknown task run: %d", status)
	}
	if _, err := c.c.RetryRunWith(context.Background(), failed, apitype.RetryRunRequest{Parameters: []byte(`{"plates":4}`)}); err != nil {
		t.Fatal(err)
	}
	c.waitState(t, failed, "COMPLETED")
	_, _, body = get(t, c.url, "/runs/"+failed)
	mustContain(t, "retried run page", body, "Attempt 2 compared with the attempts before it", "failed before",
		"its input changed too", "Steps not run again (1)", labelStep.Name(), "parameters_edited", "retried")
	// The failed task run's page shows its own lines, not those of the
	// task run of attempt 2 with the same key.
	_, _, body = get(t, c.url, "/runs/"+failed+"/tasks/"+countID)
	if strings.Contains(body, "counted the plates") {
		t.Errorf("the failed task run's page shows the lines of the next attempt's task run")
	}
}

// TestBrowserRetryEdited: a failed run's page shows its error; a retry
// with an edited parameter is refused in the browser when the schema
// refuses it, then sent and followed live to its end, with the history and
// the comparison of attempts drawn without a reload.
func TestBrowserRetryEdited(t *testing.T) {
	c := newCluster(t)
	id := c.create(t, pickyFlow.Name(), `{"plates":12,"label":"A"}`)
	c.waitState(t, id, "FAILED")
	ctx := tab(t)
	form := "form.retry-form"
	run(t, ctx, "open the failed run",
		chromedp.Navigate(c.url+"/runs/"+id),
		until(stateIs("FAILED")),
		until(`document.getElementById("run-error").textContent.includes("too many plates: 12")`),
		eval(`window.notReloaded = true`),
		click("#retry-edit summary"),
		chromedp.WaitVisible(chromedp.CSS(form+` input[name="plates"]`)),
		setValue(form+` input[name="plates"]`, "0"),
		click(form+` button[type="submit"]`),
		until(`document.querySelector("`+form+` .form-errors").textContent.includes("plates")`))
	// The server checks again: an edit the browser did not check is
	// refused with the server's message, naming the parameter.
	run(t, ctx, "the server refuses a bad edit",
		eval(`document.querySelector("`+form+`").dataset.schema = ""; document.querySelector("`+form+` input[name=plates]").removeAttribute("min")`),
		click(form+` button[type="submit"]`),
		until(`document.querySelector("`+form+` .server-error")?.textContent.includes("plates")`))
	if d, err := c.c.GetRun(context.Background(), id); err != nil || d.Attempt != 1 {
		t.Fatalf("after a refused edit the run is at attempt %d (%v)", d.Attempt, err)
	}
	run(t, ctx, "retry with 5 plates and watch it complete",
		setValue(form+` input[name="plates"]`, "5"),
		click(form+` button[type="submit"]`),
		until(`document.getElementById("run-attempt").textContent === "2"`),
		until(stateIs("COMPLETED")),
		until(`document.getElementById("run-result").textContent.trim() === "10"`),
		until(`document.getElementById("history-body").textContent.includes("parameters_edited")`),
		until(`document.getElementById("attempt-compare").textContent.includes("failed before")`),
		until(`window.notReloaded === true`))
	if params := text(t, ctx, "#run-params"); !strings.Contains(params, `"plates": 5`) {
		t.Errorf("parameters shown: %q", params)
	}
	if cmp := text(t, ctx, "#attempt-compare"); !strings.Contains(cmp, "not run again (1)") {
		t.Errorf("comparison: %q", cmp)
	}
	if d := c.waitState(t, id, "COMPLETED"); strings.TrimSpace(string(d.Result)) != "10" {
		t.Fatalf("result %s, want 10", d.Result)
	}
	// A narrow window keeps the run page usable (its tables scroll, not the page).
	run(t, ctx, "narrow window", chromedp.EmulateViewport(360, 700))
	if wide := value(t, ctx, "page width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); wide {
		t.Errorf("the run page scrolls sideways in a 360px window")
	}
}

// TestBrowserLogSearch: the search box finds, on the server, a line that
// is not on the first page, and the level filter keeps the warnings; the
// next page of matches loads without a reload.
func TestBrowserLogSearch(t *testing.T) {
	c := newCluster(t)
	id := chattyRun(t, c)
	ctx := tab(t)
	lines := `document.querySelectorAll("#log-lines li").length`
	run(t, ctx, "open the run",
		chromedp.Navigate(c.url+"/runs/"+id),
		until(lines+` === 200`),
		eval(`window.notReloaded = true`))
	if strings.Contains(text(t, ctx, "#log-lines"), "chatty line 250") {
		t.Fatalf("line 250 is on the first page")
	}
	run(t, ctx, "search for line 250",
		setValue("#logs-q", "line 250"),
		click(`#log-filter button[type="submit"]`),
		until(lines+` === 1`),
		until(`document.getElementById("log-lines").textContent.includes("chatty line 250")`),
		until(`location.search.includes("logs_q=line+250")`),
		until(`document.getElementById("logs-download").getAttribute("href").includes("q=line+250")`))
	run(t, ctx, "only warnings",
		eval(`document.getElementById("logs-q").value = ""`),
		eval(`document.getElementById("logs-level").value = "WARN"`),
		click(`#log-filter button[type="submit"]`),
		until(fmt.Sprintf(`%s === %d`, lines, chattyLines/50)),
		until(`[...document.querySelectorAll("#log-lines li .level")].every((l) => l.textContent === "WARN")`))
	run(t, ctx, "all lines, then the next page",
		eval(`document.getElementById("logs-level").value = ""`),
		click(`#log-filter button[type="submit"]`),
		until(lines+` === 200`),
		click("#logs-next"),
		until(fmt.Sprintf(`%s === %d`, lines, chattyLines)),
		until(`document.getElementById("log-lines").textContent.includes("chatty line 250")`),
		until(`!document.getElementById("logs-next")`),
		until(`window.notReloaded === true`))
}

// TestBrowserPauseResume: a running run is paused from its page with a
// reason, goes PAUSED at its next step, and is resumed from the page; the
// history shows who asked, all without a reload.
func TestBrowserPauseResume(t *testing.T) {
	c := newCluster(t)
	name := newGate(t)
	id := c.create(t, pausableFlow.Name(), `{"gate":"`+name+`"}`)
	c.waitState(t, id, "RUNNING")
	ctx := tab(t)
	run(t, ctx, "ask the run to pause",
		chromedp.Navigate(c.url+"/runs/"+id),
		until(stateIs("RUNNING")),
		until(`document.getElementById("live-note").textContent.startsWith("Live")`),
		eval(`window.notReloaded = true`),
		setValue("#pause-reason", "check the plates"),
		click(`#pause-form button[type="submit"]`),
		until(`document.querySelector(".actions .action-status").textContent.includes("Pause requested")`),
		until(`document.getElementById("history-body").textContent.includes("pause_requested")`),
		until(`document.getElementById("pause-note").textContent.includes("check the plates")`))
	close(gate(name))
	run(t, ctx, "see it paused, then resume it",
		until(stateIs("PAUSED")),
		until(`!document.getElementById("resume-run").hidden`),
		until(`document.getElementById("pause-form").hidden`),
		click("#resume-run"),
		until(stateIs("COMPLETED")),
		until(`document.getElementById("history-body").textContent.includes("resumed")`),
		until(`window.notReloaded === true`))
	if hist := text(t, ctx, "#history-body"); !strings.Contains(hist, "check the plates") {
		t.Errorf("history does not say why it paused: %q", hist)
	}
	if d := c.waitState(t, id, "COMPLETED"); strings.TrimSpace(string(d.Result)) != "42" {
		t.Fatalf("result %s, want 42", d.Result)
	}
}

// TestBrowserTaskRunLive: the task run page, opened from the run's task
// runs, shows the step's input and follows its log lines and its state
// live.
func TestBrowserTaskRunLive(t *testing.T) {
	c := newCluster(t)
	name := newGate(t)
	id := c.create(t, gatedFlow.Name(), `{"gate":"`+name+`"}`)
	d := c.wait(t, id, "running its gated step", func(d apitype.RunDetail) bool {
		for _, tr := range d.TaskRuns {
			if tr.Task == gatedStep.Name() && tr.State == "RUNNING" {
				return true
			}
		}
		return false
	})
	var trID string
	for _, tr := range d.TaskRuns {
		if tr.Task == gatedStep.Name() {
			trID = tr.ID
		}
	}
	ctx := tab(t)
	run(t, ctx, "open the task run from the run page",
		chromedp.Navigate(c.url+"/runs/"+id),
		until(`document.querySelector('#task-runs a[href$="/tasks/`+trID+`"]') !== null`),
		eval(`location.href = document.querySelector('#task-runs a[href$="/tasks/`+trID+`"]').href`),
		chromedp.WaitVisible(chromedp.CSS(".taskrun #task-state")),
		until(`document.getElementById("task-state")?.textContent.includes("RUNNING")`),
		until(`document.getElementById("live-note").textContent.startsWith("Live")`),
		until(`document.getElementById("log-lines").textContent.includes("before the gate")`),
		eval(`window.notReloaded = true`))
	if in := text(t, ctx, "#task-input"); !strings.Contains(in, name) {
		t.Errorf("input shown: %q", in)
	}
	close(gate(name))
	run(t, ctx, "watch it end",
		until(`document.getElementById("log-lines").textContent.includes("after the gate")`),
		until(`document.getElementById("task-state").textContent.includes("COMPLETED")`),
		until(`document.getElementById("live-note").textContent.includes("ended")`),
		until(`window.notReloaded === true`))
	if logs := text(t, ctx, "#log-lines"); strings.Count(logs, "before the gate") != 1 {
		t.Errorf("log lines: %q", logs)
	}
}
