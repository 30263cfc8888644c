package progcmd

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// TestDeployIsIdempotent: `deploy` registers the program's deployments;
// again it changes nothing (no write, no history entry, same schedule
// ids); a changed declaration updates the deployment and keeps a pause
// made meanwhile.
func TestDeployIsIdempotent(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	prog := helloProgram()
	prog.Deployments = []apitype.DeploymentRequest{{Name: "nightly", Flow: "hello",
		Schedules: []apitype.ScheduleRequest{{Cron: "0 3 * * *", Timezone: "Europe/Berlin"}}}}
	code, out, errOut := mainRun(t, prog, db, "deploy")
	if code != cli.ExitOK || !strings.Contains(out, "registered deployment nightly") {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errOut)
	}
	code, out, _ = mainRun(t, prog, db, "deploy")
	if code != cli.ExitOK || !strings.Contains(out, "unchanged deployment nightly") {
		t.Fatalf("deploy again: exit %d: %s", code, out)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := st.DeploymentGet(ctx, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	hist, _ := st.DeploymentHistoryList(ctx, "nightly", 0, 0)
	if len(hist) != 1 || d.Source != "code" {
		t.Fatalf("after two deploys: source %q, history %+v", d.Source, hist)
	}
	if _, err := st.DeploymentPause(ctx, storePause("nightly", "holiday")); err != nil {
		t.Fatal(err)
	}
	prog.Deployments[0].Description = "retrain"
	if code, out, _ := mainRun(t, prog, db, "deploy"); code != cli.ExitOK || !strings.Contains(out, "registered") {
		t.Fatalf("deploy a change: exit %d: %s", code, out)
	}
	d2, err := st.DeploymentGet(ctx, "nightly")
	if err != nil || d2.Description != "retrain" || !d2.Paused || d2.PauseNote != "holiday" || d2.Schedules[0].ID != d.Schedules[0].ID {
		t.Fatalf("after a changed deploy: %+v (%v)", d2, err)
	}
	// A bad declaration is refused with exit 2.
	prog.Deployments[0].Schedules[0].Timezone = "Atlantis/Capital"
	if code, _, errOut := mainRun(t, prog, db, "deploy"); code != cli.ExitUsage || !strings.Contains(errOut, "timezone") {
		t.Fatalf("deploy a bad time zone: exit %d: %s", code, errOut)
	}
}

func storePause(name, note string) store.DeploymentPauseParams {
	return store.DeploymentPauseParams{Name: name, Paused: true, Note: note}
}
