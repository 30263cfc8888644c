// Package e2e holds process-level tests: they build a user program with
// baton.Main and drive it as a user would, including kill -9.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var progBin, batonBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "baton-e2e-")
	if err != nil {
		panic(err)
	}
	progBin = filepath.Join(dir, "prog")
	batonBin = filepath.Join(dir, "baton")
	for bin, pkg := range map[string]string{progBin: "./testdata/prog", batonBin: "../../cmd/baton"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type env struct {
	t       *testing.T
	home    string
	execLog string
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{t: t, home: dir, execLog: filepath.Join(dir, "exec.log")}
}

func (e *env) cmd(extra []string, args ...string) *exec.Cmd {
	c := exec.Command(progBin, args...)
	c.Env = append(os.Environ(), "BATON_HOME="+e.home, "BATON_DB=", "EXEC_LOG="+e.execLog)
	c.Env = append(c.Env, extra...)
	return c
}

type result struct {
	code           int
	stdout, stderr string
}

func (e *env) run(extra []string, args ...string) result {
	e.t.Helper()
	c := e.cmd(extra, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// execs counts the lines of the execution log.
func (e *env) execs() map[string]int {
	e.t.Helper()
	b, err := os.ReadFile(e.execLog)
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	m := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			m[l]++
		}
	}
	return m
}

var startedRe = regexp.MustCompile(`run (\S+) of flow \S+ started`)

// startAndKill starts a run, waits until the execution log has at least
// n lines, kills the process with SIGKILL and returns the run id.
func (e *env) startAndKill(n int, extra []string, args ...string) string {
	e.t.Helper()
	c := e.cmd(extra, args...)
	stderr, err := c.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	ids := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := startedRe.FindStringSubmatch(sc.Text()); m != nil {
				ids <- m[1]
			}
		}
	}()
	var id string
	select {
	case id = <-ids:
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		e.t.Fatal("run did not start")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		total := 0
		for _, v := range e.execs() {
			total += v
		}
		if total >= n {
			break
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			e.t.Fatalf("only %d executions after 30s", total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	c.Wait()
	return id
}

func TestKillSequentialRetryRerunsAtMostInFlightStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sleep := []string{"SLEEP_MS=20"}
	id := e.startAndKill(6, sleep, "run", "steps", "--param", "n=15")

	show := e.run(nil, "runs", "show", id, "--json")
	var run struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(show.stdout), &run); err != nil {
		t.Fatalf("runs show: %v\n%s%s", err, show.stdout, show.stderr)
	}
	if run.State != "CRASHED" {
		t.Fatalf("killed run shows %s, want CRASHED", run.State)
	}
	before := e.execs()
	r := e.run(sleep, "retry", id)
	if r.code != 0 {
		t.Fatalf("retry exit %d: %s", r.code, r.stderr)
	}
	if strings.TrimSpace(r.stdout) != "105" {
		t.Fatalf("result %q, want 105", r.stdout)
	}
	after := e.execs()
	twice := 0
	for i := range 15 {
		k := fmt.Sprintf("step %d", i)
		switch after[k] {
		case 1:
		case 2:
			twice++
			if before[k] != 1 {
				t.Errorf("%s ran twice but was not in flight at the kill", k)
			}
		default:
			t.Errorf("%s ran %d times", k, after[k])
		}
	}
	if twice > 1 {
		t.Errorf("%d steps ran twice; at most the one in flight may", twice)
	}
}

func TestKillFanOutRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sleep := []string{"SLEEP_MS=10"}
	id := e.startAndKill(40, sleep, "run", "fan", "--params", "200")
	r := e.run(sleep, "retry", id)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "200" {
		t.Fatalf("retry exit %d, out %q: %s", r.code, r.stdout, r.stderr)
	}
	twice := 0
	for i := range 200 {
		switch n := e.execs()[fmt.Sprintf("item %d", i)]; n {
		case 1:
		case 2:
			twice++
		default:
			t.Errorf("item %d ran %d times", i, n)
		}
	}
	// At most the items in flight (MaxConcurrency 4) or completed but not yet
	// committed (one group commit) run again.
	if twice > 8 {
		t.Errorf("%d items ran twice", twice)
	}
}

func TestFailAtStepRetryRerunsFromThere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run([]string{"FAIL_AT=4"}, "run", "steps", "--param", "n=8")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	m := startedRe.FindStringSubmatch(r.stderr)
	if m == nil || !strings.Contains(r.stderr, "told to fail at step 4") {
		t.Fatalf("stderr lacks run id or error: %s", r.stderr)
	}
	r = e.run(nil, "retry", m[1])
	if r.code != 0 || strings.TrimSpace(r.stdout) != "28" {
		t.Fatalf("retry exit %d, out %q: %s", r.code, r.stdout, r.stderr)
	}
	for i := range 8 {
		want := 1
		if i == 4 {
			want = 2
		}
		if n := e.execs()[fmt.Sprintf("step %d", i)]; n != want {
			t.Errorf("step %d ran %d times, want %d", i, n, want)
		}
	}
	if r := e.run(nil, "retry", m[1]); r.code != 2 || !strings.Contains(r.stderr, "COMPLETED") {
		t.Errorf("retry of a COMPLETED run: exit %d, %s", r.code, r.stderr)
	}
}

func TestRetryOfLiveRunRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.cmd([]string{"SLEEP_MS=200"}, "run", "steps", "--param", "n=100")
	stderr, _ := c.StderrPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { c.Process.Kill(); c.Wait() }()
	sc := bufio.NewScanner(stderr)
	var id string
	for sc.Scan() {
		if m := startedRe.FindStringSubmatch(sc.Text()); m != nil {
			id = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	r := e.run(nil, "retry", id)
	if r.code != 2 || !strings.Contains(r.stderr, "RUNNING") {
		t.Fatalf("retry of a live run: exit %d, %s", r.code, r.stderr)
	}
}

func TestNoArgsRunsFirstFlowWithDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run(nil)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "3" {
		t.Fatalf("exit %d, out %q: %s", r.code, r.stdout, r.stderr)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flow", []string{"run", "nope"}, `unknown flow "nope"`},
		{"invalid json", []string{"run", "steps", "--params", `{"n": 1,}`}, "line 1, column"},
		{"wrong type", []string{"run", "steps", "--param", "n=abc"}, "n"},
		{"wrong type json", []string{"run", "steps", "--params", `{"n":"x"}`}, "n"},
		{"unknown param", []string{"run", "steps", "--param", "bogus=1"}, "bogus"},
		{"missing required", []string{"run", "steps", "--params", `{"n":null}`}, `"n"`},
		{"unknown run", []string{"retry", "no-such-run"}, `unknown run id "no-such-run"`},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"unknown flag", []string{"run", "steps", "--nope"}, "nope"},
		{"unknown task", []string{"task", "nope", "--input", "1"}, `unknown task "nope"`},
		{"bad task input", []string{"task", "step", "--input", `"x"`}, "integer"},
		{"params file missing", []string{"run", "steps", "--params", "@/no/such/file"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.run(nil, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 mentioning %q", r.code, r.stderr, tt.want)
			}
			if n := len(e.execs()); n != 0 {
				t.Fatalf("bad input executed %d steps", n)
			}
		})
	}
}

func TestNotABatonStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := filepath.Join(e.home, "bad.db")
	if err := os.WriteFile(bad, bytes.Repeat([]byte("not sqlite "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run(nil, "--db", bad, "run", "steps")
	if r.code != 2 || !strings.Contains(r.stderr, "not a Baton store") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(bad); !bytes.HasPrefix(b, []byte("not sqlite")) {
		t.Fatal("the foreign file was modified")
	}
}

func TestFlowsAndTaskCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run(nil, "flows")
	var flows []struct {
		Name       string         `json:"name"`
		Parameters map[string]any `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &flows); err != nil || len(flows) < 3 { // steps, fan, chaos, outage, slowmap and the flows of later tests
		t.Fatalf("flows: %v %s", err, r.stdout)
	}
	if flows[0].Name != "steps" || flows[0].Parameters["type"] != "object" {
		t.Fatalf("flows[0] = %+v", flows[0])
	}
	if req, _ := flows[0].Parameters["required"].([]any); len(req) != 1 || req[0] != "n" {
		t.Fatalf("required = %v", flows[0].Parameters["required"])
	}
	r = e.run(nil, "task", "step", "--input", "7")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "7" {
		t.Fatalf("task: exit %d out %q: %s", r.code, r.stdout, r.stderr)
	}
	r = e.run(nil, "runs", "list", "--json")
	var runs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 1 || runs[0]["flow"] != "task:step" {
		t.Fatalf("runs list: %v %s", err, r.stdout)
	}
}

func TestSIGINTCancelsRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.cmd([]string{"SLEEP_MS=100"}, "run", "steps", "--param", "n=100")
	stderr, _ := c.StderrPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var id string
	for sc.Scan() {
		if m := startedRe.FindStringSubmatch(sc.Text()); m != nil {
			id = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	// Interrupt it once its steps run (bounded polling of the child's
	// execution log: the one thing it tells from outside).
	for deadline := time.Now().Add(30 * time.Second); len(e.execs()) == 0; {
		if time.Now().After(deadline) {
			c.Process.Kill()
			t.Fatal("the run's steps did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Process.Signal(os.Interrupt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		c.Process.Kill()
		t.Fatal("process did not exit after SIGINT")
	}
	if c.ProcessState.ExitCode() != 1 {
		t.Fatalf("exit %d, want 1", c.ProcessState.ExitCode())
	}
	r := e.run(nil, "runs", "show", id, "--json")
	if !strings.Contains(r.stdout, `"state": "CANCELLED"`) && !strings.Contains(r.stdout, `"state":"CANCELLED"`) {
		t.Fatalf("run after SIGINT: %s", r.stdout)
	}
}
