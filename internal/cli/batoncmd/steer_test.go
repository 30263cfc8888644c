package batoncmd

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/store"
)

// TestRunsPauseAndUpdate: `runs pause` and `runs update` through a server
// and on the store: an update is validated against the flow's schema (exit
// 2 naming the parameter, nothing recorded), a pause request is recorded
// once, both are in the history with who asked, and a finished run refuses
// both (exit 2).
func TestRunsPauseAndUpdate(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	var prepared, fitted atomic.Int32
	def := trainProgram(&prepared, &fitted).Flows[0]
	c, err := remote.New(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	// A worker of another queue: the run waits SCHEDULED, not finished.
	if _, err := c.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w", Queues: []string{"other"}, Capacity: 1,
		Flows: []api.FlowInfo{{Name: def.Name, Parameters: params.Schema(def.ParamsType)}}}); err != nil {
		t.Fatal(err)
	}
	id := a.create(t, "train", "--params", `{"epochs":3,"lr":0.5}`)
	srv := []string{"--server", a.URL, "--as", "carol"}
	db := []string{"--db", a.DB}

	code, _, errOut := apiTestRun(t, nil, append(srv, "runs", "update", id, "--param", "epochs=many")...)
	if code != cli.ExitUsage || !strings.Contains(errOut, "epochs") {
		t.Fatalf("update with a bad value through the server: exit %d: %s; want exit 2 naming epochs", code, errOut)
	}
	code, _, errLocal := apiTestRun(t, nil, append(db, "runs", "update", id, "--param", "epochs=many")...)
	if code != cli.ExitUsage || !strings.Contains(errLocal, "epochs") {
		t.Fatalf("update with a bad value on the store: exit %d: %s; want exit 2 naming epochs", code, errLocal)
	}
	code, out, errOut := apiTestRun(t, nil, append(srv, "runs", "update", id, "--param", "epochs=5", "--reason", "longer", "--json")...)
	if code != cli.ExitOK {
		t.Fatalf("runs update: exit %d: %s", code, errOut)
	}
	if r := runsTestDecode[apitype.Run](t, out); !store.SameJSON(r.Parameters, json.RawMessage(`{"epochs":5,"lr":0.5}`)) {
		t.Errorf("parameters after the update: %s", r.Parameters)
	}
	if code, _, errOut := apiTestRun(t, nil, append(db, "runs", "update", id, "--params", `{"lr":0.25}`)...); code != cli.ExitOK {
		t.Fatalf("runs update on the store: exit %d: %s", code, errOut)
	}

	code, out, errOut = apiTestRun(t, nil, append(srv, "runs", "pause", id, "--reason", "check the sensor")...)
	if code != cli.ExitOK || !strings.Contains(out, "pauses at its next step") || !strings.Contains(out, "carol") {
		t.Fatalf("runs pause: exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut = apiTestRun(t, nil, append(db, "runs", "pause", id, "--json")...)
	if code != cli.ExitOK {
		t.Fatalf("runs pause on the store: exit %d: %s", code, errOut)
	}
	if r := runsTestDecode[apitype.Run](t, out); r.PauseRequest == nil || r.PauseRequest.Reason != "check the sensor" {
		t.Errorf("a second pause request changed the first: %+v", r.PauseRequest)
	}

	code, out, errOut = apiTestRun(t, nil, append(db, "runs", "history", id, "--json")...)
	if code != cli.ExitOK {
		t.Fatalf("runs history: exit %d: %s", code, errOut)
	}
	var got []string
	for _, e := range runsTestDecode[[]apitype.HistoryEntry](t, out) {
		got = append(got, e.Action+" by "+e.Actor)
	}
	hist := strings.Join(got, "; ")
	for _, want := range []string{"parameters_edited by carol", "pause_requested by carol"} {
		if strings.Count(hist, want) != 1 {
			t.Errorf("history %q: want one %s", hist, want)
		}
	}
	if strings.Count(hist, store.ActionParametersEdited) != 2 {
		t.Errorf("history %q: want two parameter edits (nothing for the refused ones)", hist)
	}

	if code, _, errOut := apiTestRun(t, nil, append(srv, "runs", "cancel", id)...); code != cli.ExitOK {
		t.Fatalf("runs cancel: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{
		append(srv, "runs", "pause", id), append(db, "runs", "pause", id),
		append(srv, "runs", "update", id, "--param", "epochs=7"), append(db, "runs", "update", id, "--param", "epochs=7"),
	} {
		if code, _, errOut := apiTestRun(t, nil, args...); code != cli.ExitUsage || !strings.Contains(errOut, "CANCELLED") {
			t.Errorf("%v on a cancelled run: exit %d: %s; want exit 2 saying it is CANCELLED", args, code, errOut)
		}
	}
}
