package batoncmd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestReadCommandsNeedAnExistingStore: issue 6 item 9. A read-only command
// on a store that does not exist (a typo) is a usage error naming the path,
// and creates nothing: no directory, no database, no blobs/.
func TestReadCommandsNeedAnExistingStore(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"runs", "list"}, {"runs", "show", "x"}, {"runs", "logs", "x"},
		{"workers", "list"}, {"queues", "list"}, {"retention", "run", "--older-than", "1d"},
	} {
		dir := t.TempDir()
		db := filepath.Join(dir, "rael", "real.db")
		code, out, errOut := runsTestRun(t, append([]string{"--db", db}, args...)...)
		if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, "no Baton store at "+db) || !strings.Contains(errOut, "does not exist") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 naming %s", args, code, out, errOut, db)
		}
		if _, err := os.Stat(filepath.Join(dir, "rael")); !os.IsNotExist(err) {
			t.Errorf("%v created %s: %v", args, filepath.Join(dir, "rael"), err)
		}
	}
}

// TestWriteCommandsSayTheyCreatedAStore: commands that write create a
// missing store and say where, once.
func TestWriteCommandsSayTheyCreatedAStore(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "new", "baton.db")
	run := func() string {
		var out, errb bytes.Buffer
		env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		if code := progcmd.Main(context.Background(), []string{"run", "hello", "--db", db}, helloProgram(), env); code != cli.ExitOK {
			t.Fatalf("run: exit %d: %s", code, errb.String())
		}
		return errb.String()
	}
	if errOut := run(); !strings.Contains(errOut, "baton: created a new store at "+db+"\n") {
		t.Errorf("first run should say it created the store:\n%s", errOut)
	}
	if errOut := run(); strings.Contains(errOut, "created a new store") {
		t.Errorf("second run should not say it created the store:\n%s", errOut)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(db), "blobs")); err != nil {
		t.Errorf("blob directory: %v", err)
	}
	// Now it exists, reading works.
	if code, _, errOut := runsTestRun(t, "--db", db, "runs", "list"); code != cli.ExitOK {
		t.Errorf("runs list: exit %d: %s", code, errOut)
	}
	// A store whose blob directory is gone is still readable, and reading
	// does not recreate it.
	if err := os.RemoveAll(filepath.Join(filepath.Dir(db), "blobs")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runsTestRun(t, "--db", db, "runs", "list", "--json"); code != cli.ExitOK {
		t.Errorf("runs list without blobs/: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(db), "blobs")); !os.IsNotExist(err) {
		t.Errorf("runs list recreated blobs/: %v", err)
	}
}

// TestStorePathErrors: issue 6 item 10. Paths that cannot be a store get
// a message naming the path and the problem (exit 2), not a driver code.
func TestStorePathErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{{"runs", "list"}} {
		code, _, errOut := runsTestRun(t, append([]string{"--db", dir}, args...)...)
		if code != cli.ExitUsage || !strings.Contains(errOut, dir+": it is a directory, not a database file; name a file, e.g. "+filepath.Join(dir, "baton.db")) || strings.Contains(errOut, "(14)") {
			t.Errorf("--db DIR %v: exit %d: %s", args, code, errOut)
		}
	}
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := progcmd.Main(context.Background(), []string{"run", "hello", "--db", dir}, helloProgram(), env); code != cli.ExitUsage || !strings.Contains(errb.String(), "it is a directory") {
		t.Errorf("run --db DIR: exit %d: %s", code, errb.String())
	}
	// Under a file: the directory cannot be created.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := progcmd.Main(context.Background(), []string{"run", "hello", "--db", filepath.Join(file, "baton.db")}, helloProgram(), env); code != cli.ExitUsage || !strings.Contains(errb.String(), "cannot create its directory") {
		t.Errorf("run --db FILE/baton.db: exit %d: %s", code, errb.String())
	}
}

// TestStorePermissionErrors runs the read-only cases as an unprivileged
// user (root ignores permissions): a read-only store file and a store in a
// read-only directory.
func TestStorePermissionErrors(t *testing.T) {
	t.Parallel()
	if os.Getenv("BATON_TEST_AS_NOBODY") == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root to run the check as nobody")
		}
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("setpriv not found")
		}
		dir, err := os.MkdirTemp("", "baton-perm-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(exe, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", exe,
			"-test.run=^TestStorePermissionErrors$", "-test.v")
		cmd.Env = append(os.Environ(), "BATON_TEST_AS_NOBODY="+dir)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), "permission denied") && strings.Contains(string(out), "fork/exec") || (err != nil && !strings.Contains(string(out), "--- FAIL")) {
			t.Skipf("cannot run the test binary as nobody: %v\n%s", err, out)
		}
		if err != nil {
			t.Fatalf("as nobody: %v\n%s", err, out)
		}
		t.Logf("as nobody:\n%s", out)
		return
	}
	dir := os.Getenv("BATON_TEST_AS_NOBODY")
	db := filepath.Join(dir, "ro.db")
	if code, _, errOut := runsTestRun(t, "--db", db, "runs", "list"); code != cli.ExitUsage {
		t.Fatalf("setup: %d %s", code, errOut)
	}
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := progcmd.Main(context.Background(), []string{"run", "hello", "--db", db}, helloProgram(), env); code != cli.ExitOK {
		t.Fatalf("run: %d %s", code, errb.String())
	}
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	// Reading a read-only store works (a run that would be marked CRASHED
	// as it is read gets a warning in words); writing says why it cannot.
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.RunCreate(context.Background(), store.RunCreateParams{Run: store.Run{ID: "dead", Flow: "f", State: store.RunRunning,
		Attempt: 1, OwnerHost: hostname(t), OwnerPID: 1 << 30}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runsTestRun(t, "--db", db, "runs", "list"); code != cli.ExitOK || strings.Contains(errOut, "(8)") {
		t.Errorf("runs list of a read-only store: exit %d: %s", code, errOut)
	} else {
		t.Logf("runs list of a read-only store: %s", errOut)
	}
	errb.Reset()
	code := progcmd.Main(context.Background(), []string{"run", "hello", "--db", db}, helloProgram(), env)
	if errOut := errb.String(); code != cli.ExitUsage || !strings.Contains(errOut, "store "+db+": the file is read-only") || strings.Contains(errOut, "(8)") {
		t.Errorf("run on a read-only store: exit %d: %s", code, errOut)
	}
	t.Logf("read-only store: %s", errb.String())
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "s.db"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sub, 0o555); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runsTestRun(t, "--db", filepath.Join(sub, "s.db"), "runs", "list")
	if code != cli.ExitUsage || !strings.Contains(errOut, "the directory "+sub+" is not writable") || strings.Contains(errOut, "(1544)") {
		t.Errorf("store in a read-only directory: exit %d: %s", code, errOut)
	}
	t.Logf("read-only directory: %s", errOut)
}
