package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// outage is how long the chaos tests below cut the server or the database:
// with the default lease of 15s a worker must ride it out without losing
// the run.
const outage = 8 * time.Second

// pgServer is a throwaway PostgreSQL cluster of one test, which the test may
// stop and start without disturbing the shared one of scripts/with-postgres.sh.
type pgServer struct {
	t        *testing.T
	bin, dir string
	as       []string // runuser prefix when running as root
	port     string
	url      string
}

// pgBin finds initdb and pg_ctl as scripts/with-postgres.sh does: on PATH,
// else in the newest /usr/lib/postgresql/*/bin.
func pgBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				return filepath.Dir(r)
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
				return d
			}
		}
	}
	return ""
}

// newPG initializes and starts a cluster in a temporary directory, or skips
// the test when PostgreSQL is not installed.
func newPG(t *testing.T) *pgServer {
	t.Helper()
	bin := pgBin()
	if bin == "" {
		t.Skip("PostgreSQL binaries (initdb, pg_ctl) not found")
	}
	p := &pgServer{t: t, bin: bin}
	pgUser := ""
	if u, err := user.Current(); err == nil {
		pgUser = u.Username
	}
	if os.Geteuid() == 0 {
		pu, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user to run PostgreSQL as")
		}
		p.as, pgUser = []string{"runuser", "-u", "postgres", "--"}, "postgres"
		defer func() {
			uid, _ := strconv.Atoi(pu.Uid)
			gid, _ := strconv.Atoi(pu.Gid)
			filepath.Walk(p.dir, func(path string, _ os.FileInfo, _ error) error { return os.Lchown(path, uid, gid) })
		}()
	}
	dir, err := os.MkdirTemp("", "baton-pg-outage-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	os.Chmod(dir, 0o755)
	os.MkdirAll(filepath.Join(dir, "sock"), 0o755)
	t.Cleanup(func() {
		p.ctl("-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		pu, _ := user.Lookup("postgres")
		uid, _ := strconv.Atoi(pu.Uid)
		gid, _ := strconv.Atoi(pu.Gid)
		os.Lchown(dir, uid, gid)
		os.Lchown(filepath.Join(dir, "sock"), uid, gid)
	}
	out, err := p.cmd("initdb", "-D", filepath.Join(dir, "data"), "-U", pgUser, "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_, port, _ := net.SplitHostPort(freePort(t))
	p.port = port
	p.url = fmt.Sprintf("postgres://%s@127.0.0.1:%s/postgres?sslmode=disable", pgUser, port)
	p.start()
	return p
}

func (p *pgServer) cmd(tool string, args ...string) *exec.Cmd {
	full := append(append([]string{}, p.as...), append([]string{filepath.Join(p.bin, tool)}, args...)...)
	return exec.Command(full[0], full[1:]...)
}

func (p *pgServer) ctl(args ...string) ([]byte, error) {
	return p.cmd("pg_ctl", append([]string{"-D", filepath.Join(p.dir, "data")}, args...)...).CombinedOutput()
}

func (p *pgServer) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %s -c unix_socket_directories=%s -c fsync=off "+
		"-c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
		p.port, filepath.Join(p.dir, "sock"))
	if out, err := p.ctl("-l", filepath.Join(p.dir, "server.log"), "-w", "-t", "60", "-s", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// stop shuts the cluster down the way `pg_ctl stop` does (fast mode: open
// connections are terminated).
func (p *pgServer) stop() {
	p.t.Helper()
	if out, err := p.ctl("-m", "fast", "-w", "stop"); err != nil {
		p.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// serverAt starts a server listening on addr and waits until it is ready.
func (c *cluster) serverAt(addr string, extra ...string) *exec.Cmd {
	c.t.Helper()
	args := append([]string{"server", "--addr", addr, "--db", c.db, "--blobs", filepath.Join(c.e.home, "blobs")}, extra...)
	p := c.start(batonBin, args...)
	cl, _ := client.New("http://" + addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := cl.Queues(context.Background()); err == nil {
			return p
		}
		if p.ProcessState != nil || time.Now().After(deadline) {
			c.t.Fatalf("server %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", path, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFinal waits until the run is in a final state and returns it.
func waitFinal(t *testing.T, c *cluster, cl *client.Client, id string, timeout time.Duration) apitype.RunDetail {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, err := cl.GetRun(context.Background(), id)
		if err == nil {
			switch d.State {
			case "COMPLETED", "FAILED", "CANCELLED", "CRASHED":
				return d
			}
		}
		if time.Now().After(deadline) {
			c.dump(cl, id)
			t.Fatalf("run %s not finished after %s (state %s, err %v)", id, timeout, d.State, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOnce verifies that the run completed on its first attempt, each of
// its n gated steps completed exactly once and ran exactly once.
func checkOnce(t *testing.T, c *cluster, d apitype.RunDetail, n int) {
	t.Helper()
	if d.State != "COMPLETED" {
		t.Fatalf("run %s ended %s, want COMPLETED: %+v", d.ID, d.State, d.Error)
	}
	if d.Attempt != 1 {
		t.Errorf("run %s completed at attempt %d, want 1: the outage must be ridden out, not crash the run", d.ID, d.Attempt)
	}
	completed := map[string]int{}
	for _, tr := range d.TaskRuns {
		if tr.State == "COMPLETED" {
			completed[tr.Key]++
		}
	}
	execs := c.e.execs()
	for i := range n {
		key := "s" + strconv.Itoa(i)
		if completed[key] != 1 {
			t.Errorf("step %s completed %d times, want 1", key, completed[key])
		}
		ran := 0
		for line, k := range execs {
			if strings.HasPrefix(line, "gated "+key+" ") {
				ran += k
			}
		}
		if ran != 1 {
			t.Errorf("step %s ran %d times, want 1", key, ran)
		}
	}
}

// TestOutagePostgresAtStepEnd stops PostgreSQL for 8s exactly while a step
// of a run on a worker finishes: the worker's engine retries its writes and
// the run completes, each step exactly once, with the default lease.
func TestOutagePostgresAtStepEnd(t *testing.T) {
	t.Parallel()
	pg := newPG(t)
	c := newCluster(t, pg.url)
	gate := t.TempDir()
	c.env = []string{"GATE_DIR=" + gate, "GATE_KEYS=s1", "SLEEP_MS=300"}
	addr := freePort(t)
	c.serverAt(addr)
	url := "http://" + addr
	cl, _ := client.New(url)
	c.worker(url)
	r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "outage", Parameters: []byte(`{"n":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(gate, "at-s1"), 60*time.Second)
	pg.stop()
	if err := os.WriteFile(filepath.Join(gate, "go-s1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage) // the outage itself
	pg.start()
	checkOnce(t, c, waitFinal(t, c, cl, r.ID, 60*time.Second), 3)
}

// TestOutageServerKilledAtStepEnd kills the server (SQLite) with SIGKILL
// exactly at a step's end and restarts it 8s later on the same file and
// port: the run completes, each step exactly once, with the default lease.
func TestOutageServerKilledAtStepEnd(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.db = filepath.Join(c.e.home, "baton.db")
	gate := t.TempDir()
	c.env = []string{"GATE_DIR=" + gate, "GATE_KEYS=s1", "SLEEP_MS=300"}
	addr := freePort(t)
	srv := c.serverAt(addr)
	url := "http://" + addr
	cl, _ := client.New(url)
	c.worker(url)
	r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "outage", Parameters: []byte(`{"n":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(gate, "at-s1"), 60*time.Second)
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()
	if err := os.WriteFile(filepath.Join(gate, "go-s1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage) // the outage itself
	c.serverAt(addr)
	checkOnce(t, c, waitFinal(t, c, cl, r.ID, 60*time.Second), 3)
}

// TestPermanentWriteFailureEndsRun: a step key with a NUL byte cannot be
// written to PostgreSQL. Whatever the edge validation says about it, the
// permanent write failure must end the run (FAILED or CRASHED), never leave
// it RUNNING on a worker that keeps heartbeating.
func TestPermanentWriteFailureEndsRun(t *testing.T) {
	t.Parallel()
	db := os.Getenv("BATON_TEST_POSTGRES")
	if db != "" {
		db = freshDatabase(t, db)
	} else {
		db = newPG(t).url
	}
	c := newCluster(t, db)
	addr := freePort(t)
	c.serverAt(addr, "--lease-timeout", "2s")
	url := "http://" + addr
	cl, _ := client.New(url)
	c.worker(url)
	r, _, err := cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "outage", Parameters: []byte(`{"n":1,"key":"bad\u0000key"}`)})
	if err != nil {
		if strings.Contains(err.Error(), "HTTP 400") {
			t.Skipf("the API refuses the NUL byte at the edge: %v", err)
		}
		t.Fatal(err)
	}
	d := waitFinal(t, c, cl, r.ID, 60*time.Second)
	if d.State == "COMPLETED" {
		t.Skip("the store now accepts a NUL byte in a step key: no permanent write failure left to provoke here")
	}
	if d.State != "FAILED" && d.State != "CRASHED" {
		t.Fatalf("run ended %s, want FAILED or CRASHED", d.State)
	}
}
