package batoncmd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
)

// TestBadInputNamesTheField: each kind of bad input of deployments,
// schedules, queues and limits is refused by the command line (on the
// store and through a server: exit 2) and by the API (4xx) with the same
// message, which names the field at fault; nothing is recorded.
func TestBadInputNamesTheField(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	ctx := context.Background()
	if err := a.St.FlowUpsert(ctx, store.FlowUpsertParams{Flows: []store.Flow{{Name: "train",
		Parameters: json.RawMessage(`{"type":"object","properties":{"epochs":{"type":"integer"}}}`)}}}); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := apiTestRun(t, nil, "--server", a.URL, "deployments", "create", "known", "--flow", "train", "--cron", "@daily"); code != cli.ExitOK {
		t.Fatalf("create known: %s", errOut)
	}
	create := []string{"deployments", "create", "x", "--flow", "train"}
	tests := []struct {
		name   string
		args   []string // the command line
		method string   // the API request
		path   string
		body   string
		status int
		field  string // what the message names
	}{
		{"invalid cron", append(create, "--cron", "not a cron"),
			"POST", "/deployments", `{"name":"x","flow":"train","schedules":[{"cron":"not a cron"}]}`, 400, `field "cron"`},
		{"cron out of range", append(create, "--cron", "61 * * * *"),
			"POST", "/deployments", `{"name":"x","flow":"train","schedules":[{"cron":"61 * * * *"}]}`, 400, `field "cron"`},
		{"invalid rrule", append(create, "--rrule", "FREQ=SOMETIMES"),
			"POST", "/deployments", `{"name":"x","flow":"train","schedules":[{"rrule":"FREQ=SOMETIMES"}]}`, 400, `field "rrule"`},
		{"unknown time zone", append(create, "--cron", "0 3 * * *", "--timezone", "Nowhere/City"),
			"POST", "/deployments", `{"name":"x","flow":"train","schedules":[{"cron":"0 3 * * *","timezone":"Nowhere/City"}]}`, 400, `field "timezone"`},
		{"invalid interval", append(create, "--interval", "sometimes"),
			"POST", "/deployments", `{"name":"x","flow":"train","schedules":[{"interval":"sometimes"}]}`, 400, `field "interval"`},
		{"unknown queue", append(create, "--cron", "@daily", "--queue", "nosuch"),
			"POST", "/deployments", `{"name":"x","flow":"train","queue":"nosuch","schedules":[{"cron":"@daily"}]}`, 400, `field "queue"`},
		{"parameters off the schema", append(create, "--cron", "@daily", "--params", `{"epochs":"many"}`),
			"POST", "/deployments", `{"name":"x","flow":"train","parameters":{"epochs":"many"},"schedules":[{"cron":"@daily"}]}`, 400, `"epochs"`},
		{"negative max active", append(create, "--max-active", "-2"),
			"POST", "/deployments", `{"name":"x","flow":"train","max_active":-2}`, 400, `field "max_active"`},
		{"unknown deployment run", []string{"deployments", "run", "missing"},
			"POST", "/deployments/missing/run", `{}`, 404, `unknown deployment "missing"`},
		{"unknown deployment next", []string{"deployments", "next", "missing", "--count", "3"},
			"GET", "/deployments/missing/next?count=3", "", 404, `unknown deployment "missing"`},
		{"run parameters off the schema", []string{"deployments", "run", "known", "--params", `{"epochs":"many"}`},
			"POST", "/deployments/known/run", `{"parameters":{"epochs":"many"}}`, 400, `"epochs"`},
		{"negative tag limit", []string{"limits", "set", "robot", "-1"},
			"PUT", "/limits/robot", `{"limit":-1}`, 400, "limit: "},
		{"negative queue limit", []string{"queues", "create", "lab", "--limit", "-1"},
			"POST", "/queues", `{"name":"lab","limit":-1}`, 400, "limit: "},
		{"negative queue limit on update", []string{"queues", "update", "lab", "--limit=-3"},
			"POST", "/queues/lab", `{"limit":-3}`, 400, "limit: "},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, a.URL+"/api/v1"+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &body)
		apiMsg := body.Error.Message
		if resp.StatusCode != tc.status || !strings.Contains(apiMsg, tc.field) {
			t.Errorf("%s: API %s %s = %d %s; want %d naming %s", tc.name, tc.method, tc.path, resp.StatusCode, raw, tc.status, tc.field)
		}
		for _, mode := range [][]string{{"--db", a.DB}, {"--server", a.URL}} {
			code, _, errOut := apiTestRun(t, nil, append(append([]string{}, mode...), tc.args...)...)
			cliMsg := strings.TrimSpace(strings.TrimPrefix(errOut, "baton: "))
			if code != cli.ExitUsage || cliMsg != apiMsg {
				t.Errorf("%s: baton %s %v: exit %d, %q; want exit 2 and the API's message %q", tc.name, mode[0], tc.args, code, cliMsg, apiMsg)
			}
		}
	}
	// Nothing was recorded.
	if ds, err := a.St.DeploymentList(ctx); err != nil || len(ds) != 1 {
		t.Errorf("deployments after the refusals: %d, %v; want only known", len(ds), err)
	}
	if ls, err := a.St.LimitList(ctx, nil); err != nil || len(ls) != 0 {
		t.Errorf("limits after the refusals: %+v, %v", ls, err)
	}
	if qs, err := a.St.QueueDeclared(ctx); err != nil || len(qs) != 1 {
		t.Errorf("queues after the refusals: %+v, %v; want only default", qs, err)
	}
}
