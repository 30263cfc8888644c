package e2e

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// TestQueueLimitPostgres: a work queue's concurrency limit holds globally.
// Two servers and four workers with 4 slots each on queue lab (16 in all)
// share one PostgreSQL; the queue's limit is 3. Every execution of a
// lab-step task run (no tags: only the queue's limit holds it back)
// records its start and end; at no instant do more than 3 run, also while
// a worker holding slots is killed with SIGKILL (its slots come back when
// its lease expires) and its task runs run again elsewhere.
func TestQueueLimitPostgres(t *testing.T) {
	t.Parallel()
	url := os.Getenv("BATON_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("BATON_TEST_POSTGRES is not set; run the tests through scripts/with-postgres.sh")
		}
		t.Skip("BATON_TEST_POSTGRES is not set")
	}
	const limit, runs, items = 3, 4, 25
	c := newCluster(t, freshDatabase(t, url))
	c.env = []string{"SLEEP_MS=40"}
	_, u1 := c.server()
	_, u2 := c.server()
	cl, _ := client.New(u1 + "," + u2)
	ctx := context.Background()
	n := limit
	if q, err := cl.SetQueue(ctx, apitype.QueueRequest{Name: "lab", Limit: &n}, true, ""); err != nil || q.Limit != limit {
		t.Fatalf("SetQueue = %+v, %v", q, err)
	}
	workers := startQueueWorkers(c, u1, u2, "lab")
	var ids []string
	for range runs {
		r, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: "labs", Parameters: []byte(strconv.Itoa(items))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	killed := killExecuting(t, c.e, "lab", 15, workers)
	c.waitAll(cl, ids, 2*time.Minute)

	execs := stepExecs(t, c.e, "lab")
	if n := finished(execs); n != runs*items {
		t.Errorf("%d lab task runs finished, want %d", n, runs*items)
	}
	most, when := maxOverlap(execs, killed, time.Now().UnixNano())
	if most > limit {
		t.Errorf("%d lab task runs ran at once at %s, limit %d", most, time.Unix(0, when).Format(time.RFC3339Nano), limit)
	}
	if most < limit {
		t.Errorf("at most %d lab task runs ran at once: the limit of %d was never used", most, limit)
	}
	t.Logf("%d executions, at most %d at once", len(execs), most)
	qs, err := cl.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Queue == "lab" && (q.TasksRunning != 0 || q.Limit != limit) {
			t.Errorf("queue lab after the runs: %+v; want no task run running, limit %d", q, limit)
		}
	}
}
