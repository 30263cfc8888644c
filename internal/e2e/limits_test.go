package e2e

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// robotExec is one execution of robot-step read from the execution log:
// its process and when it started and ended (end 0: it never logged one).
type robotExec struct {
	run, key, pid string
	start, end    int64
}

// robotExecs reads the robot-step executions of the log.
func robotExecs(t *testing.T, e *env) []robotExec {
	t.Helper()
	return stepExecs(t, e, "robot")
}

// stepExecs reads the executions that the log records under kind
// ("robot": robot-start and robot-end lines).
func stepExecs(t *testing.T, e *env, kind string) []robotExec {
	t.Helper()
	b, err := os.ReadFile(e.execLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	open := map[string]int{} // run key pid -> index of its open execution
	var out []robotExec
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 || (f[0] != kind+"-start" && f[0] != kind+"-end") {
			continue
		}
		at, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			t.Fatalf("bad log line %q", l)
		}
		id := f[1] + " " + f[2] + " " + f[3]
		if f[0] == kind+"-start" {
			open[id] = len(out)
			out = append(out, robotExec{run: f[1], key: f[2], pid: f[3], start: at})
			continue
		}
		i, ok := open[id]
		if !ok {
			t.Fatalf("log line %q ends an execution that did not start", l)
		}
		out[i].end = at
		delete(open, id)
	}
	return out
}

// maxOverlap returns the most executions running at one instant, and when.
// An execution of a killed process ends when it was killed; one that did
// not end otherwise runs until the end of the test (now).
func maxOverlap(execs []robotExec, killed map[string]int64, now int64) (int, int64) {
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, x := range execs {
		end := x.end
		if end == 0 {
			end = now
			if k, ok := killed[x.pid]; ok {
				end = k
			}
		}
		edges = append(edges, edge{x.start, 1}, edge{end, -1})
	}
	// Ends before starts at the same instant: an execution that ended at t
	// does not overlap one that started at t.
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return a.delta - b.delta
	})
	n, most, when := 0, 0, int64(0)
	for _, e := range edges {
		n += e.delta
		if n > most {
			most, when = n, e.at
		}
	}
	return most, when
}

// startQueueWorkers starts four workers serving the queues default and
// queue (4 slots of queue each), each through both servers, in turns
// first; it returns their PIDs.
func startQueueWorkers(c *cluster, u1, u2, queue string) []int {
	var workers []int
	for i := range 4 {
		servers := u1 + "," + u2
		if i%2 == 1 {
			servers = u2 + "," + u1
		}
		w := c.start(progBin, "worker", "--server", servers, "--queue", "default", "--queue", queue,
			"--concurrency", "4", "--slots", queue+"=4")
		workers = append(workers, w.Process.Pid)
	}
	return workers
}

// killExecuting waits until at least after executions of kind are
// recorded, then kills with SIGKILL one of workers executing one; it
// returns the killed PID with the time of the kill.
func killExecuting(t *testing.T, e *env, kind string, after int, workers []int) map[string]int64 {
	t.Helper()
	killed := map[string]int64{}
	deadline := time.Now().Add(time.Minute)
	for len(killed) == 0 {
		execs := stepExecs(t, e, kind)
		if len(execs) >= after {
			for _, x := range execs {
				pid, _ := strconv.Atoi(x.pid)
				if x.end != 0 || !slices.Contains(workers, pid) {
					continue
				}
				killed[x.pid] = time.Now().UnixNano()
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker to kill: %d %s executions", len(execs), kind)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return killed
}

// finished counts the distinct task runs (run and key) of execs that ended.
func finished(execs []robotExec) int {
	done := map[string]bool{}
	for _, x := range execs {
		if x.end != 0 {
			done[x.run+" "+x.key] = true
		}
	}
	return len(done)
}

// TestTagLimitPostgres: a tag limit holds globally. Two servers and four
// workers with 4 robot slots each (16 in all) share one PostgreSQL; the
// limit of tag robot is 3. Every execution of a robot task run records its
// start and end; at no instant do more than 3 run, also while a worker
// holding slots is killed with SIGKILL (its slots come back when its lease
// expires) and its task runs run again elsewhere.
func TestTagLimitPostgres(t *testing.T) {
	t.Parallel()
	url := os.Getenv("BATON_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("BATON_TEST_POSTGRES is not set; run the tests through scripts/with-postgres.sh")
		}
		t.Skip("BATON_TEST_POSTGRES is not set")
	}
	const limit = 3
	c := newCluster(t, freshDatabase(t, url))
	c.env = []string{"SLEEP_MS=40"}
	_, u1 := c.server()
	_, u2 := c.server()
	cl, _ := client.New(u1 + "," + u2)
	ctx := context.Background()
	if l, err := cl.SetLimit(ctx, "robot", limit); err != nil || l.Limit != limit {
		t.Fatalf("SetLimit = %+v, %v", l, err)
	}
	workers := startQueueWorkers(c, u1, u2, "robot")
	var ids []string
	for range 4 {
		r, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: "robots", Parameters: []byte(`30`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}

	// Once work flows, kill a worker that is executing a robot task run.
	killed := killExecuting(t, c.e, "robot", 20, workers)
	// While its slots are held by its expired-to-be lease, the list says
	// who holds them.
	ls, err := cl.Limits(ctx)
	if err != nil || len(ls) != 1 || ls[0].Tag != "robot" || ls[0].Running > limit {
		t.Fatalf("Limits = %+v, %v", ls, err)
	}
	c.waitAll(cl, ids, 2*time.Minute)

	execs := robotExecs(t, c.e)
	if n := finished(execs); n != 4*30 {
		t.Errorf("%d robot task runs finished, want %d", n, 4*30)
	}
	killedOpen := 0
	for _, x := range execs {
		if _, ok := killed[x.pid]; ok && x.end == 0 {
			killedOpen++
		}
	}
	if killedOpen == 0 {
		t.Errorf("the killed worker was executing no robot task run")
	}
	most, when := maxOverlap(execs, killed, time.Now().UnixNano())
	if most > limit {
		t.Errorf("%d robot task runs ran at once at %s, limit %d", most, time.Unix(0, when).Format(time.RFC3339Nano), limit)
	}
	if most < limit {
		t.Errorf("at most %d robot task runs ran at once: the limit of %d was never used", most, limit)
	}
	t.Logf("%d executions (%d cut by the kill), at most %d at once", len(execs), killedOpen, most)
	if ls, err := cl.Limits(ctx); err != nil || len(ls) != 1 || ls[0].Running != 0 || ls[0].Waiting != 0 {
		t.Errorf("Limits after the runs = %+v, %v; want no slot held", ls, err)
	}
}

func TestMaxOverlap(t *testing.T) {
	t.Parallel()
	execs := []robotExec{{pid: "1", start: 0, end: 10}, {pid: "1", start: 10, end: 20}, {pid: "2", start: 5, end: 0},
		{pid: "3", start: 6, end: 7}}
	if n, at := maxOverlap(execs, map[string]int64{"2": 8}, 100); n != 3 || at != 6 {
		t.Errorf("maxOverlap = %d at %d, want 3 at 6", n, at)
	}
	if n, _ := maxOverlap(execs, nil, 100); n != 3 {
		t.Errorf("maxOverlap without the kill = %d, want 3", n)
	}
}

// TestLocalRunSlotAfterKill: a local run (no server, no worker) whose
// robot task holds the only slot of tag robot is killed with SIGKILL; a
// second local run's robot task waits AWAITING_SLOT while the dead
// process's lease lasts, then runs: the slot is not leaked, and not handed
// out while its lease is still valid.
func TestLocalRunSlotAfterKill(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	baton := func(args ...string) {
		t.Helper()
		c := exec.Command(batonBin, args...)
		c.Env = append(os.Environ(), "BATON_HOME="+e.home, "BATON_DB=", "BATON_SERVER=")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("baton %v: %v\n%s", args, err, out)
		}
	}
	baton("limits", "set", "robot", "1")
	a := e.cmd([]string{"SLEEP_MS=600000"}, "run", "robots", "--params", "1")
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(robotExecs(t, e)) == 0 {
		if time.Now().After(deadline) {
			a.Process.Kill()
			t.Fatal("the first run's robot task did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	killed := time.Now()
	r := e.run([]string{"SLEEP_MS=5"}, "run", "robots", "--params", "2")
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	execs := robotExecs(t, e)
	if len(execs) != 3 {
		t.Fatalf("%d robot executions, want 1 killed and 2 completed: %+v", len(execs), execs)
	}
	first := time.Unix(0, execs[1].start)
	// The dead holder's lease (15 s, renewed every 5 s) ran out at least
	// 10 s after the kill.
	if wait := first.Sub(killed); wait < 9*time.Second || wait > 40*time.Second {
		t.Errorf("the second run's robot task started %s after the kill, want after the dead holder's lease (10-15 s)", wait)
	}
	t.Logf("the second run's robot task started %s after the kill", first.Sub(killed).Round(time.Millisecond))
}
