package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
)

// TestFlowsAPI: GET /flows lists the registered flows by name with their
// schema, defaults and deployments; GET /flows/{name} is one of them, with
// the next fire of each active deployment; an unknown flow is a 404 naming
// it, a bad name a 400; both are in the OpenAPI document.
func TestFlowsAPI(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		if code, body := b.call(t, "GET", apitype.Prefix+"/flows", ""); code != 200 || len(body["flows"].([]any)) != 0 {
			t.Fatalf("flows before any registration: %d %v; want 200 and none", code, body)
		}
		register(t, b)
		anchor := time.Date(2030, 1, 1, 6, 0, 0, 0, time.UTC)
		for _, req := range []string{
			`{"name":"nightly","flow":"count","schedules":[{"interval":"24h","anchor":"` + anchor.Format(time.RFC3339) + `"}]}`,
			`{"name":"manual","flow":"count"}`,
			`{"name":"other","flow":"single"}`,
		} {
			if code, body := b.call(t, "POST", apitype.Prefix+"/deployments", req); code != http.StatusCreated {
				t.Fatalf("create deployment %s: %d %v", req, code, body)
			}
		}
		if code, body := b.call(t, "POST", apitype.Prefix+"/deployments/manual/pause", ""); code != 200 {
			t.Fatalf("pause: %d %v", code, body)
		}

		code, body := b.call(t, "GET", apitype.Prefix+"/flows", "")
		if code != 200 {
			t.Fatalf("GET /flows: %d %v", code, body)
		}
		flows := body["flows"].([]any)
		if len(flows) != 2 || flows[0].(map[string]any)["name"] != "count" || flows[1].(map[string]any)["name"] != "single" {
			t.Fatalf("GET /flows: %v; want count and single, by name", flows)
		}
		if deps := flows[1].(map[string]any)["deployments"].([]any); len(deps) != 1 || deps[0].(map[string]any)["name"] != "other" {
			t.Errorf("deployments of single: %v; want other only", deps)
		}

		code, f := b.call(t, "GET", apitype.Prefix+"/flows/count", "")
		if code != 200 {
			t.Fatalf("GET /flows/count: %d %v", code, f)
		}
		if _, err := time.Parse(time.RFC3339Nano, f["registered_at"].(string)); err != nil {
			t.Errorf("registered_at %v: %v", f["registered_at"], err)
		}
		schema, _ := f["parameter_schema"].(map[string]any)
		if props, _ := schema["properties"].(map[string]any); props["count"] == nil {
			t.Errorf("parameter_schema %v lacks the count property", f["parameter_schema"])
		}
		if d, _ := f["defaults"].(map[string]any); d["name"] != "d" || d["count"] != float64(0) {
			t.Errorf("defaults %v; want the registered ones", f["defaults"])
		}
		if f["runs_link"] != apitype.Prefix+"/runs?flow=count" {
			t.Errorf("runs_link %v", f["runs_link"])
		}
		deps := f["deployments"].([]any)
		if len(deps) != 2 {
			t.Fatalf("deployments of count: %v; want manual and nightly", deps)
		}
		manual, nightly := deps[0].(map[string]any), deps[1].(map[string]any)
		if manual["name"] != "manual" || manual["paused"] != true || manual["next_fire"] != nil || manual["schedules"] != float64(0) {
			t.Errorf("manual: %v; want paused, no schedule, no next fire", manual)
		}
		if nightly["name"] != "nightly" || nightly["paused"] != false || nightly["schedules"] != float64(1) {
			t.Errorf("nightly: %v", nightly)
		}
		if next, err := time.Parse(time.RFC3339Nano, nightly["next_fire"].(string)); err != nil || !next.After(b.clk.Now()) ||
			next.Sub(anchor)%(24*time.Hour) != 0 {
			t.Errorf("nightly's next fire %v (%v): want a coming fire of its schedule", nightly["next_fire"], err)
		}

		code, body = b.call(t, "GET", apitype.Prefix+"/flows/nope", "")
		if code != 404 || errCode(body) != apitype.CodeNotFound || !strings.Contains(errMsg(body), `"nope"`) {
			t.Errorf("unknown flow: %d %v; want 404 naming it", code, body)
		}
		code, body = b.call(t, "GET", apitype.Prefix+"/flows/a%00b", "")
		if code != 400 || !strings.Contains(errMsg(body), "flow name") {
			t.Errorf("bad flow name: %d %v; want 400 naming the flow name", code, body)
		}

		_, doc := b.call(t, "GET", apitype.Prefix+"/openapi.json", "")
		paths := doc["paths"].(map[string]any)
		for _, p := range []string{apitype.Prefix + "/flows", apitype.Prefix + "/flows/{name}"} {
			if paths[p] == nil {
				t.Errorf("the OpenAPI document lacks %s", p)
			}
		}
	})
}
