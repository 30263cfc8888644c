package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// cluster runs baton servers and workers as processes.
type cluster struct {
	t     *testing.T
	e     *env
	db    string
	mu    sync.Mutex
	procs []*exec.Cmd
	urls  []string
	// env is added to the environment of the processes started after it is set.
	env []string
}

func newCluster(t *testing.T, db string) *cluster {
	home, err := os.MkdirTemp("", "baton-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, e: &env{t: t, home: home, execLog: filepath.Join(home, "exec.log")}, db: db}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs kept in %s", home)
			return
		}
		os.RemoveAll(home)
	})
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.procs {
			if p.ProcessState == nil {
				p.Process.Kill()
				p.Wait()
			}
		}
	})
	return c
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *cluster) start(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "BATON_HOME="+c.e.home, "EXEC_LOG="+c.e.execLog, "SLEEP_MS=5", "BATON_DB=", "BATON_SERVER=")
	cmd.Env = append(cmd.Env, c.env...)
	logf, err := os.Create(filepath.Join(c.e.home, fmt.Sprintf("proc-%d.log", len(c.procs))))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.mu.Unlock()
	return cmd
}

// server starts a server and waits until it is ready.
func (c *cluster) server() (*exec.Cmd, string) {
	addr := freePort(c.t)
	p := c.start(batonBin, "server", "--addr", addr, "--db", c.db, "--lease-timeout", "2s", "--blobs", filepath.Join(c.e.home, "blobs"))
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		cl, _ := client.New(url)
		if _, err := cl.Queues(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("server %s did not start", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.urls = append(c.urls, url)
	return p, url
}

func (c *cluster) worker(servers string, extra ...string) *exec.Cmd {
	return c.start(progBin, append([]string{"worker", "--server", servers, "--concurrency", "8", "--slots", "default=16"}, extra...)...)
}

func (c *cluster) waitAll(cl *client.Client, ids []string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, id := range ids {
		for {
			d, err := cl.GetRun(context.Background(), id)
			if err == nil && (d.State == "COMPLETED" || d.State == "FAILED" || d.State == "CANCELLED" || d.State == "CRASHED") {
				if d.State != "COMPLETED" {
					c.t.Fatalf("run %s ended %s: %+v", id, d.State, d.Error)
				}
				break
			}
			if time.Now().After(deadline) {
				c.dump(cl, id)
				c.t.Fatalf("run %s not finished after %s (state %s, err %v)", id, timeout, d.State, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// dump logs what a stuck run's history and the processes' logs say.
func (c *cluster) dump(cl *client.Client, id string) {
	if d, err := cl.GetRun(context.Background(), id); err == nil {
		for _, ev := range d.Events {
			if ev.TaskKey == "" {
				c.t.Logf("event %s %s -> %s %s: %s", ev.At.Format("15:04:05.000"), ev.From, ev.To, ev.Cause, ev.Message)
			}
		}
		for _, tr := range d.TaskRuns {
			if tr.State != "COMPLETED" {
				c.t.Logf("task run %s %s %s", tr.Key, tr.State, tr.ID)
			}
		}
	}
	logs, _ := filepath.Glob(filepath.Join(c.e.home, "proc-*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		lines := strings.Split(string(b), "\n")
		var keep []string
		for _, line := range lines {
			if strings.Contains(line, id) || strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") {
				keep = append(keep, line)
			}
		}
		if len(keep) > 40 {
			keep = keep[len(keep)-40:]
		}
		c.t.Logf("%s:\n%s", filepath.Base(l), strings.Join(keep, "\n"))
	}
}

type span struct {
	pid        string
	start, end int64
}

// checkExecutions verifies that no step ran on two processes at once, and
// that every step of every run has exactly one COMPLETED task run.
func (c *cluster) checkExecutions(cl *client.Client, ids []string, killed map[string]int64) {
	c.t.Helper()
	logs, _ := filepath.Glob(filepath.Join(c.e.home, "proc-*.log"))
	for _, l := range logs {
		if b, _ := os.ReadFile(l); bytes.Contains(b, []byte("panic:")) {
			i := bytes.Index(b, []byte("panic:"))
			c.t.Errorf("%s panicked:\n%s", filepath.Base(l), b[i:min(len(b), i+3000)])
		}
	}
	f, err := os.Open(c.e.execLog)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	spans := map[string][]*span{}
	open := map[string]*span{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 5 {
			continue
		}
		k := fs[1] + " " + fs[2]
		ts, _ := strconv.ParseInt(fs[4], 10, 64)
		switch fs[0] {
		case "start":
			sp := &span{pid: fs[3], start: ts, end: -1}
			spans[k] = append(spans[k], sp)
			open[k+" "+fs[3]] = sp
		case "end", "cancelled":
			if sp := open[k+" "+fs[3]]; sp != nil {
				sp.end = ts
			}
		}
	}
	for k, list := range spans {
		for _, sp := range list {
			if sp.end < 0 {
				if at, ok := killed[sp.pid]; ok {
					sp.end = at
				} else {
					c.t.Errorf("step %s started on pid %s and never ended", k, sp.pid)
				}
			}
		}
		for i := range list {
			for j := i + 1; j < len(list); j++ {
				a, b := list[i], list[j]
				if a.start < b.end && b.start < a.end {
					c.t.Errorf("step %s ran on pids %s and %s at the same time", k, a.pid, b.pid)
				}
			}
		}
	}
	for _, id := range ids {
		d, err := cl.GetRun(context.Background(), id)
		if err != nil {
			c.t.Fatal(err)
		}
		completed := map[string]int{}
		for _, tr := range d.TaskRuns {
			if tr.State == "COMPLETED" {
				completed[tr.Key]++
			}
		}
		if len(completed) != 20 {
			c.t.Errorf("run %s has %d completed steps, want 20", id, len(completed))
		}
		for k, n := range completed {
			if n != 1 {
				c.t.Errorf("run %s step %s completed %d times: a completed step ran again", id, k, n)
			}
		}
	}
}

func createRuns(t *testing.T, cl *client.Client, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "chaos"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = r.ID
	}
	return ids
}

func TestDistributedSQLite(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.db = filepath.Join(c.e.home, "baton.db")
	_, url := c.server()
	cl, _ := client.New(url)
	c.worker(url)
	c.worker(url)
	ids := createRuns(t, cl, 20)
	c.waitAll(cl, ids, 60*time.Second)
	c.checkExecutions(cl, ids, nil)

	// Cancellation reaches the running code.
	slow := c.start(progBin, "worker", "--server", url, "--queue", "slow")
	_ = slow
	r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "steps", Queue: "slow", Parameters: []byte(`{"n":1000,"sleep_ms":50}`)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, _ := cl.GetRun(context.Background(), r.ID)
		if d.State == "RUNNING" && len(d.TaskRuns) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow run did not start: %s", d.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := cl.CancelRun(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		d, _ := cl.GetRun(context.Background(), r.ID)
		if d.State == "CANCELLED" {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("run still %s 5s after cancel", d.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("cancellation took %s", took)
	}
}

// TestChaosPostgres: two servers and three workers on one PostgreSQL run
// 200 flow runs of 20 steps while one worker and one server are killed.
func TestChaosPostgres(t *testing.T) {
	t.Parallel()
	url := os.Getenv("BATON_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("BATON_TEST_POSTGRES is not set; run the tests through scripts/with-postgres.sh")
		}
		t.Skip("BATON_TEST_POSTGRES is not set")
	}
	c := newCluster(t, freshDatabase(t, url))
	s1, u1 := c.server()
	_, u2 := c.server()
	both := u1 + "," + u2
	cl, _ := client.New(u2 + "," + u1)
	w1 := c.worker(both)
	c.worker(u2 + "," + u1)
	c.worker(both)
	ids := createRuns(t, cl, 200)

	killed := map[string]int64{}
	// Kill a worker once work is flowing, then a server.
	waitExecs(t, c.e, 300)
	killed[strconv.Itoa(w1.Process.Pid)] = time.Now().UnixNano()
	w1.Process.Signal(syscall.SIGKILL)
	waitExecs(t, c.e, 1500)
	s1.Process.Signal(syscall.SIGKILL)
	c.waitAll(cl, ids, 2*time.Minute)
	c.checkExecutions(cl, ids, killed)
}

func waitExecs(t *testing.T, e *env, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		total := 0
		for k, v := range e.execs() {
			if strings.HasPrefix(k, "start ") {
				total += v
			}
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d executions", total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freshDatabase creates an empty database on the test PostgreSQL server and
// returns its URL.
func freshDatabase(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("chaos_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, err := neturl.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
