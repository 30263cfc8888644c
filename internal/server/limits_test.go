package server_test

import (
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// TestLimitsBadInput: the limits routes refuse bad input with a 400 whose
// message names the field, the message of the command line, and change
// nothing.
func TestLimitsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"negative", "PUT", "/api/v1/limits/robot", `{"limit":-1}`, 400, store.CheckLimitMax(-1).Error()},
		{"missing", "PUT", "/api/v1/limits/robot", `{}`, 400, "limit: required (the number of slots, 0 or more)"},
		{"not a number", "PUT", "/api/v1/limits/robot", `{"limit":"4"}`, 400, ""},
		{"unknown field", "PUT", "/api/v1/limits/robot", `{"limit":4,"max":4}`, 400, ""},
		{"unknown limit", "GET", "/api/v1/limits/nothing", "", 404, `tag "nothing" has no limit`},
		{"delete unknown", "DELETE", "/api/v1/limits/nothing", "", 404, `tag "nothing" has no limit`},
	}
	for _, tt := range tests {
		status, body := b.call(t, tt.method, tt.path, tt.body)
		e, _ := body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != tt.status || errCode(body) == "" || (tt.msg != "" && msg != tt.msg) {
			t.Errorf("%s: %s %s = %d %v; want %d with message %q", tt.name, tt.method, tt.path, status, body, tt.status, tt.msg)
		}
	}
	status, body := b.call(t, "PUT", "/api/v1/limits/robot", `{"limit":2}`)
	if status != 200 || body["tag"] != "robot" || body["limit"] != float64(2) {
		t.Fatalf("PUT limit: %d %v", status, body)
	}
	status, body = b.call(t, "GET", "/api/v1/limits", "")
	if ls, _ := body["limits"].([]any); status != 200 || len(ls) != 1 {
		t.Fatalf("GET limits: %d %v", status, body)
	}
	if status, body := b.call(t, "DELETE", "/api/v1/limits/robot", ""); status != 204 {
		t.Fatalf("DELETE limit: %d %v", status, body)
	}
}
