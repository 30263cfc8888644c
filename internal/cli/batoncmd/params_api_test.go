package batoncmd

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/remote"
)

type countFlowParams struct {
	Count int    `json:"count" baton:"required"`
	Name  string `json:"name,omitempty"`
}

// countProgram has a flow "count" whose parameters are countFlowParams.
func countProgram() progcmd.Program {
	return progcmd.Program{Name: "prog", Flows: []*engine.FlowDef{{
		Name: "count", ParamsType: reflect.TypeFor[countFlowParams](), Defaults: json.RawMessage(`{"count":0,"name":"d"}`),
		Body: func(fc *engine.FlowCtx, raw json.RawMessage) (any, error) { return string(raw), nil },
	}}}
}

// TestRunsCreateValidatesLikeRun: issue 6 items 6, 7 and 10. `baton runs
// create --params` of a flow a worker registered is refused with the
// message the user binary's `run --params` gives for the same defect, and
// malformed JSON is reported with its line and column by the same parser.
func TestRunsCreateValidatesLikeRun(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	c, err := remote.New(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	def := countProgram().Flows[0]
	if _, err := c.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w", Queues: []string{"default"}, Capacity: 1,
		Flows: []api.FlowInfo{{Name: def.Name, Parameters: params.Schema(def.ParamsType), Defaults: def.Defaults}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ params, want string }{
		{`{"count":"abc"}`, `parameter "count": expected integer, got string "abc"`},
		{`{"count":99999999999999999999}`, `parameter "count": 99999999999999999999 is out of range for int`},
		{`{"count":1,"nope":{"x":1}}`, `unknown parameter "nope"; known parameters: count, name`},
		{`{}`, `missing required parameter "count" (integer)`},
		{`{"name":"x"}`, `missing required parameter "count" (integer)`},
		{`{"n":`, `--params: invalid JSON at line 1, column 6: unexpected end of JSON input`},
		{"{\n  \"count\": 1,\n  x}", `--params: invalid JSON at line 3, column 3: invalid character 'x' looking for beginning of object key string`},
	}
	for _, tt := range tests {
		code, out, apiErr := apiTestRun(t, nil, "--server", a.URL, "runs", "create", "count", "--params", tt.params)
		if code != cli.ExitUsage || out != "" || !strings.Contains(apiErr, tt.want) {
			t.Errorf("runs create --params %s: exit %d, stdout %q, stderr %q; want exit 2 saying %q", tt.params, code, out, apiErr, tt.want)
		}
		var o, e bytes.Buffer
		env := &cli.Env{Stdout: &o, Stderr: &e, Getenv: func(string) string { return "" }}
		code = progcmd.Main(context.Background(), []string{"run", "count", "--db", a.DB, "--params", tt.params}, countProgram(), env)
		if code != cli.ExitUsage || !strings.Contains(e.String(), tt.want) {
			t.Errorf("prog run --params %s: exit %d, stderr %q; want exit 2 saying %q", tt.params, code, e.String(), tt.want)
		}
	}
	// Good parameters: the run records them merged over the defaults.
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "create", "count", "--params", `{"count":3}`, "--json")
	if code != cli.ExitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	if p, _ := json.Marshal(runsTestDecode[map[string]any](t, out)["parameters"]); string(p) != `{"count":3,"name":"d"}` {
		t.Errorf("recorded parameters %s", p)
	}
}

// TestRunsCreateRefusesBadIdentifiers: invalid UTF-8 in a flow name, queue
// or idempotency key is refused before JSON encoding would replace it.
func TestRunsCreateRefusesBadIdentifiers(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	for _, args := range [][]string{{"fl\xffow"}, {"f", "--queue", "q\xfe"}, {"f", "--idempotency-key", "k\xff"}} {
		code, out, errOut := apiTestRun(t, nil, append([]string{"--server", a.URL, "runs", "create"}, args...)...)
		if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, "is not valid UTF-8") {
			t.Errorf("runs create %q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	db := runsTestSeed(t)
	for _, args := range [][]string{{"runs", "show", "r\xff"}, {"runs", "logs", "r\xff"}, {"runs", "list", "--flow", "f\xff"}} {
		code, _, errOut := runsTestRun(t, append([]string{"--db", db}, args...)...)
		if code != cli.ExitUsage || !strings.Contains(errOut, "is not valid UTF-8") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestRunsCreateIdempotencyConflict: reusing a key for another request is
// exit 2 saying what differs; the same request prints the first run.
func TestRunsCreateIdempotencyConflict(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	id := a.create(t, "hello", "--idempotency-key", "k", "--params", `{"name":"a"}`)
	if again := a.create(t, "hello", "--idempotency-key", "k", "--params", `{"name":"a"}`); again != id {
		t.Fatalf("same request: run %s, want %s", again, id)
	}
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "create", "hello", "--idempotency-key", "k", "--params", `{"name":"b"}`)
	if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, `idempotency key "k" belongs to run `+id) || !strings.Contains(errOut, `parameters {"name":"a"}, not {"name":"b"}`) {
		t.Errorf("other parameters: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
