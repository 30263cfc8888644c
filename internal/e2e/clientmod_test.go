package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientModule builds examples/clientmod, a module of its own that
// uses the Go client as a program outside Baton's module would (its go.mod
// replaces Baton with this checkout), and runs it against `baton dev`: it
// creates a run of the bundled ETL flow, waits for it and prints its
// result. The build is -mod=readonly: it downloads nothing and never
// rewrites the example's go.mod or go.sum (make lint checks they are
// tidy), and it fails if a public package needs an internal one ("use of
// internal package ... not allowed").
func TestClientModule(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../examples/clientmod")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "clientmod")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=readonly -buildvcs=false", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/clientmod: %v\n%s", err, out)
	}

	c := newCluster(t, "")
	_, url, kill := devStart(c, filepath.Join(c.e.home, "dev.db"))
	defer kill()
	warehouse := filepath.Join(c.e.home, "warehouse")
	params, _ := json.Marshal(map[string]any{"rows": 50, "outage": 1, "out": warehouse})
	run := exec.Command(bin, "--flow", "etl", "--params", string(params), "--timeout", "60s")
	run.Env = append(os.Environ(), "BATON_SERVER="+url)
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("clientmod: %v\nstderr:\n%s", err, stderr.String())
	}
	var summary struct {
		RowsRead     int      `json:"rows_read"`
		Files        []string `json:"files"`
		LoadAttempts int      `json:"load_attempts"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &summary); err != nil {
		t.Fatalf("stdout is not the ETL summary: %v\n%s", err, stdout.String())
	}
	if summary.RowsRead != 50 || summary.LoadAttempts != 2 || len(summary.Files) == 0 {
		t.Errorf("ETL summary %+v; want 50 rows read, loaded on the second attempt", summary)
	}
	if !strings.Contains(stderr.String(), "COMPLETED") {
		t.Errorf("stderr does not say the run completed:\n%s", stderr.String())
	}
}
