package batoncmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/store"
)

type trainParams struct {
	Epochs int     `json:"epochs" baton:"required"`
	LR     float64 `json:"lr"`
}

// trainProgram has a flow "train" that prepares its epochs, then fits at
// its learning rate, which fails (for good) above 1.
func trainProgram(prepared, fitted *atomic.Int32) progcmd.Program {
	prepare := &engine.TaskDef{Name: "prepare", InputType: reflect.TypeFor[int](),
		Invoke: func(_ context.Context, in json.RawMessage) (any, error) { prepared.Add(1); return string(in), nil }}
	fit := &engine.TaskDef{Name: "fit", InputType: reflect.TypeFor[float64](),
		Invoke: func(_ context.Context, in json.RawMessage) (any, error) {
			fitted.Add(1)
			if lr, _ := strconv.ParseFloat(string(in), 64); lr > 1 {
				return nil, &engine.PermanentError{Err: errors.New("diverged")}
			}
			return "fit at " + string(in), nil
		}}
	train := &engine.FlowDef{Name: "train", ParamsType: reflect.TypeFor[trainParams](),
		Body: func(fc *engine.FlowCtx, raw json.RawMessage) (any, error) {
			var p trainParams
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, err
			}
			if _, err := taskCall(fc, prepare, strconv.Itoa(p.Epochs)); err != nil {
				return nil, err
			}
			return taskCall(fc, fit, fmt.Sprint(p.LR))
		}}
	return progcmd.Program{Name: "prog", Flows: []*engine.FlowDef{train}, Tasks: []*engine.TaskDef{prepare, fit}}
}

// TestRetryWithEditedParameters: `prog retry RUN_ID --param` and
// `baton runs retry RUN_ID --params` refuse bad parameters with the same
// message (exit 2, the run unchanged); good ones start a new attempt that
// reuses the steps whose input did not change, and `runs show` says per
// attempt how many steps were reused and ran, and who edited what.
func TestRetryWithEditedParameters(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	var prepared, fitted atomic.Int32
	prog := trainProgram(&prepared, &fitted)
	c, err := remote.New(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	def := prog.Flows[0]
	if _, err := c.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w", Queues: []string{"default"}, Capacity: 1,
		Flows: []api.FlowInfo{{Name: def.Name, Parameters: params.Schema(def.ParamsType)}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mainRun(t, prog, a.DB, "run", "train", "--param", "epochs=3", "--param", "lr=5", "--json")
	if code != cli.ExitFailed {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	id := runsTestDecode[map[string]any](t, out)["id"].(string)
	unchanged := func(what string) {
		t.Helper()
		r, err := a.St.RunGet(context.Background(), id)
		if err != nil || r.State != store.RunFailed || r.Attempt != 1 || string(r.Parameters) != `{"epochs":3,"lr":5}` {
			t.Fatalf("%s: run %+v, %v; want it FAILED at attempt 1 with its parameters", what, r, err)
		}
	}

	for _, tt := range []struct{ param, params, want string }{
		{"lr=fast", `{"lr":"fast"}`, `parameter "lr": expected number, got string "fast"`},
		{"bogus=1", `{"bogus":1}`, `unknown parameter "bogus"; known parameters: epochs, lr`},
		{"epochs=null", `{"epochs":null}`, `missing required parameter "epochs" (integer)`},
	} {
		code, _, progErr := mainRun(t, prog, a.DB, "retry", id, "--params", tt.params)
		if code != cli.ExitUsage || !strings.Contains(progErr, tt.want) {
			t.Errorf("prog retry --params %s: exit %d, %q; want exit 2 saying %q", tt.params, code, progErr, tt.want)
		}
		// --param key=value has the messages of run --param.
		name, _, _ := strings.Cut(tt.param, "=")
		code, _, progErr = mainRun(t, prog, a.DB, "retry", id, "--param", tt.param)
		if code != cli.ExitUsage || !strings.Contains(progErr, name) {
			t.Errorf("prog retry --param %s: exit %d, %q; want exit 2 naming %s", tt.param, code, progErr, name)
		}
		code, _, apiErr := apiTestRun(t, nil, "--server", a.URL, "runs", "retry", id, "--params", tt.params)
		if code != cli.ExitUsage || !strings.Contains(apiErr, tt.want) {
			t.Errorf("baton runs retry --params %s: exit %d, %q; want exit 2 saying %q", tt.params, code, apiErr, tt.want)
		}
		unchanged("after retry --param " + tt.param)
	}
	if code, _, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "retry", id, "--params", `{"lr":`); code != cli.ExitUsage ||
		!strings.Contains(errOut, "--params: invalid JSON at line 1, column 7") {
		t.Errorf("malformed --params: exit %d, %q", code, errOut)
	}
	unchanged("after malformed --params")

	code, out, errOut = mainRun(t, prog, a.DB, "retry", id, "--param", "lr=0.5")
	if code != cli.ExitOK || !strings.Contains(out, "fit at 0.5") {
		t.Fatalf("prog retry --param lr=0.5: exit %d, %q: %s", code, out, errOut)
	}
	if prepared.Load() != 1 || fitted.Load() != 2 {
		t.Errorf("prepare ran %d times, fit %d; want 1 (reused) and 2", prepared.Load(), fitted.Load())
	}
	code, out, errOut = mainRun(t, prog, a.DB, "runs", "show", id)
	if code != cli.ExitOK {
		t.Fatalf("runs show: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Attempts:", "  1  0 reused, 2 ran", "  2  1 reused, 1 ran  parameters edited by " + engine.CurrentUser() +
		`: {"epochs":3,"lr":0.5} (were {"epochs":3,"lr":5})`} {
		if !strings.Contains(out, want) {
			t.Errorf("runs show does not say %q:\n%s", want, out)
		}
	}

	// Through the server: the edit is recorded with who asked.
	r, err := a.St.RunGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r.State = store.RunFailed
	if err := a.St.BatchWrite(context.Background(), store.Batch{Runs: []store.Run{r}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "retry", id, "--params", `{"epochs":4}`, "--json")
	if code != cli.ExitOK {
		t.Fatalf("baton runs retry --params: exit %d: %s", code, errOut)
	}
	v := runsTestDecode[apitype.Run](t, out)
	if v.Attempt != 3 || len(v.Attempts) != 3 || v.Attempts[2].Edit == nil ||
		v.Attempts[2].Edit.By != engine.CurrentUser()+" through the API from 127.0.0.1" ||
		!params.SameJSON(v.Attempts[2].Edit.To, json.RawMessage(`{"epochs":4,"lr":0.5}`)) {
		t.Errorf("after baton runs retry --params: %+v", v)
	}
}
