package batoncmd

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
)

// TestRunsListDeploymentTagCreated: runs list --deployment, --tag,
// --created-from and --created-to filter the same way on the store (--db)
// and through a server (--server), and a bad value exits 2 naming the flag
// in the words the API uses for its query parameter.
func TestRunsListDeploymentTagCreated(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	ctx := context.Background()
	res, err := http.Post(a.URL+apitype.Prefix+"/deployments", "application/json",
		strings.NewReader(`{"name":"nightly","flow":"etl","tags":["prod"]}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create deployment: %d", res.StatusCode)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, r := range []store.Run{
		{ID: "a", Flow: "etl", State: store.RunCompleted, Deployment: "nightly"},
		{ID: "b", Flow: "etl", State: store.RunFailed},
		{ID: "c", Flow: "etl", State: store.RunFailed, Deployment: "nightly"},
	} {
		r.Attempt, r.Queue, r.CreatedAt, r.UpdatedAt = 1, apitype.DefaultQueue, t0.Add(time.Duration(i)*time.Hour), t0
		if _, _, err := a.St.RunCreate(ctx, store.RunCreateParams{Run: r, Cause: "user"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, where := range [][]string{{"--db", a.DB}, {"--server", a.URL}} {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--deployment", "nightly"}, "c,a"},
			{[]string{"--tag", "prod", "--state", "failed"}, "c"},
			{[]string{"--tag", "dev"}, ""},
			{[]string{"--created-from", "2026-03-01T13:00:00Z"}, "c,b"},
			{[]string{"--created-from", "2026-03-01T12:30", "--created-to", "2026-03-01T14:00"}, "b"},
			{[]string{"--created-to", "2026-03-02"}, "c,b,a"},
			{[]string{"--created-from", "2026-03-01T13:00:00+01:00"}, "c,b,a"},
			{[]string{"--deployment", "nightly", "--created-from", "2026-03-01T13:00:00Z"}, "c"},
		} {
			args := append(append(append([]string{}, where...), "runs", "list", "--json"), tc.args...)
			code, out, errOut := apiTestRun(t, nil, args...)
			if code != cli.ExitOK {
				t.Errorf("%s %v: exit %d: %s", where[0], tc.args, code, errOut)
				continue
			}
			if got := strings.Join(runsTestIDs(runsTestDecode[[]map[string]any](t, out)), ","); got != tc.want {
				t.Errorf("%s %v: got %q, want %q", where[0], tc.args, got, tc.want)
			}
		}
		for _, tc := range []struct {
			args []string
			want string // in the message, after "baton: "
		}{
			{[]string{"--created-from", "yesterday"}, `--created-from must be a time (RFC 3339, "2006-01-02T15:04" or "2006-01-02", UTC without a zone), got "yesterday"`},
			{[]string{"--created-to", "2026-13-01"}, `--created-to must be a time`},
			{[]string{"--created-from", "2026-03-02", "--created-to", "2026-03-01"}, `--created-to (2026-03-01T00:00:00Z) must be after --created-from (2026-03-02T00:00:00Z)`},
			{[]string{"--created-from", "2026-03-01", "--created-to", "2026-03-01"}, `must be after --created-from`},
			{[]string{"--deployment", "a\x00b"}, `--deployment`},
			{[]string{"--tag", "a\x00b"}, `--tag`},
		} {
			args := append(append(append([]string{}, where...), "runs", "list"), tc.args...)
			code, out, errOut := apiTestRun(t, nil, args...)
			if code != cli.ExitUsage || !strings.HasPrefix(errOut, "baton: ") || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want exit %d naming the flag: %s", where[0], tc.args, code, out, errOut, cli.ExitUsage, tc.want)
			}
		}
	}
}
