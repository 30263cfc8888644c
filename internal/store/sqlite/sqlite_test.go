package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/batonhq/baton/internal/store/storetest"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sub", "dir", "baton.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	for _, db := range []*sql.DB{s.write, s.read} {
		var mode string
		var sync, busy int
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 1 || busy != int(BusyTimeout.Milliseconds()) {
			t.Errorf("journal_mode=%s synchronous=%d busy_timeout=%d; want wal, 1 (NORMAL), %d",
				mode, sync, busy, BusyTimeout.Milliseconds())
		}
	}
	var app, ver string
	if err := s.read.QueryRowContext(ctx, `SELECT (SELECT value FROM baton_meta WHERE key='app'),
		(SELECT value FROM baton_meta WHERE key='schema_version')`).Scan(&app, &ver); err != nil {
		t.Fatal(err)
	}
	if app != "baton" || ver != fmt.Sprint(SchemaVersion()) {
		t.Errorf("baton_meta: app=%q schema_version=%q", app, ver)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "baton.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.BatchWrite(ctx, store.Batch{
		Runs:     []store.Run{{ID: "r1", Flow: "f", State: store.RunCompleted, CreatedAt: time.Unix(1, 0)}},
		TaskRuns: []store.TaskRun{{ID: "t1", RunID: "r1", Key: "k", State: store.TaskCompleted}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	r, err := s.RunGet(ctx, "r1")
	if err != nil || r.State != store.RunCompleted || r.Flow != "f" {
		t.Fatalf("RunGet after reopen = %+v, %v", r, err)
	}
	j, err := s.JournalList(ctx, "r1")
	if err != nil || len(j) != 1 {
		t.Fatalf("JournalList after reopen = %+v, %v", j, err)
	}
}

func TestSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "baton.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, "UPDATE baton_meta SET value = ? WHERE key = 'schema_version'",
		fmt.Sprint(SchemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	want := fmt.Sprintf("has schema version %d but this binary knows up to %d; upgrade baton", SchemaVersion()+1, SchemaVersion())
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should name %s and say %q", err, path, want)
	}
}

func TestNotSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte(strings.Repeat("these are not the droids you are looking for\n", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path)
	if !errors.Is(err, store.ErrNotBatonStore) {
		t.Fatalf("Open text file: err = %v, want ErrNotBatonStore", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "these are not") {
		t.Errorf("Open modified the foreign file")
	}
}

func TestForeignSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(ctx, path)
	if !errors.Is(err, store.ErrNotBatonStore) {
		t.Fatalf("Open foreign SQLite db: err = %v, want ErrNotBatonStore", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	// The foreign database is left as it was: no Baton tables, not WAL.
	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var mode string
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'runs'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if n != 0 || mode == "wal" {
		t.Errorf("foreign database modified: runs tables=%d journal_mode=%s", n, mode)
	}
}

func TestTranslateNotADB(t *testing.T) {
	// A file with a valid header but garbage after it gets past the header
	// check; the driver's SQLITE_NOTADB must map to ErrNotBatonStore.
	path := filepath.Join(t.TempDir(), "bad.db")
	junk := append([]byte("SQLite format 3\x00"), []byte(strings.Repeat("\xff", 8192))...)
	if err := os.WriteFile(path, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path)
	if !errors.Is(err, store.ErrNotBatonStore) {
		t.Fatalf("Open corrupt header: err = %v, want ErrNotBatonStore", err)
	}
}

// TestTwoProcesses opens the same file twice at once (as two processes
// would: each Store has its own connections and file locks), then writes
// from both concurrently.
func TestTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	var (
		stores [2]*Store
		errs   [2]error
		wg     sync.WaitGroup
	)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d of a fresh file: %v", i, err)
		}
		defer stores[i].Close()
	}

	const batches, rows = 15, 50
	werrs := make(chan error, 2*2*batches)
	for p, s := range stores {
		for g := range 2 {
			wg.Go(func() {
				for b := range batches {
					var batch store.Batch
					for i := range rows {
						batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{
							ID: fmt.Sprintf("p%d-g%d-b%d-%d", p, g, b, i), RunID: "shared",
							Key: fmt.Sprintf("%d/%d/%d/%d", p, g, b, i), State: store.TaskCompleted,
						})
					}
					batch.Events = []store.Event{{RunID: "shared", Cause: fmt.Sprintf("p%d", p)}}
					if err := s.BatchWrite(ctx, batch); err != nil {
						werrs <- fmt.Errorf("process %d writer %d: %w", p, g, err)
						return
					}
					if _, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: "shared", Key: "0/0/0/0"}); err != nil {
						werrs <- fmt.Errorf("process %d reader: %w", p, err)
						return
					}
				}
			})
		}
	}
	// Transitions from both processes compete on one run.
	if err := stores[0].BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "shared", State: store.RunPending}}}); err != nil {
		t.Fatal(err)
	}
	var wins [2]int
	for p, s := range stores {
		wg.Go(func() {
			for range 20 {
				_, err := s.RunTransition(ctx, store.RunTransitionParams{
					ID: "shared", From: []store.RunState{store.RunPending}, To: store.RunRunning, Cause: "test",
				})
				if err == nil {
					wins[p]++
					if _, err := s.RunTransition(ctx, store.RunTransitionParams{
						ID: "shared", From: []store.RunState{store.RunRunning}, To: store.RunPending, Cause: "test",
					}); err != nil && !errors.Is(err, store.ErrConflict) {
						werrs <- err
					}
				} else if !errors.Is(err, store.ErrConflict) {
					werrs <- err
				}
			}
		})
	}
	wg.Wait()
	close(werrs)
	for err := range werrs {
		t.Error(err)
	}
	for _, s := range stores {
		trs, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: "shared"})
		if err != nil {
			t.Fatal(err)
		}
		if len(trs) != 2*2*batches*rows {
			t.Errorf("%d task runs, want %d", len(trs), 2*2*batches*rows)
		}
	}
	if wins[0]+wins[1] == 0 {
		t.Errorf("no transition succeeded")
	}
}

// TestJournalListLarge checks that the journal of a 100,000-task fan-out
// loads whole.
func TestJournalListLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	n := 100_000
	if raceEnabled {
		n = 5_000 // the race detector slows the transpiled C down ~50x
	}
	batch := make([]store.TaskRun, 0, 1000)
	for i := range n {
		batch = append(batch, store.TaskRun{ID: fmt.Sprintf("t%06d", i), RunID: "big", Key: fmt.Sprintf("k/%d", i),
			Task: "work", State: store.TaskCompleted, InputHash: "sha256:0123456789abcdef",
			Result: []byte(`{"ok":true}`), CreatedAt: time.Unix(0, int64(i+1))})
		if len(batch) == cap(batch) {
			if err := s.BatchWrite(ctx, store.Batch{TaskRuns: batch}); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// Its speed is measured by the benchmarks (replay_ms_100k), not here:
	// a timed test fails on a busy machine.
	j, err := s.JournalList(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(j) != n {
		t.Fatalf("%d entries, want %d", len(j), n)
	}
}

// TestRealProcesses runs writers in separate OS processes (this test binary
// re-executed) on one fresh file, including the concurrent first Open that
// creates the schema.
func TestRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "multi.db")
	const procs = 3
	cmds := make([]*exec.Cmd, procs)
	outs := make([]strings.Builder, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), "BATON_SQLITE_HELPER_DB="+path, fmt.Sprintf("BATON_SQLITE_HELPER_ID=%d", i))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer process %d: %v\n%s", i, err, outs[i].String())
		}
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	trs, err := s.TaskRunList(context.Background(), store.TaskRunListParams{RunID: "multi"})
	if err != nil {
		t.Fatal(err)
	}
	if want := procs * helperBatches * helperRows; len(trs) != want {
		t.Errorf("%d task runs, want %d", len(trs), want)
	}
}

// Writes per helper process (fewer under -race, which slows SQLite ~50x).
var helperBatches, helperRows = map[bool]int{false: 20, true: 5}[raceEnabled], 200

// TestHelperWriter is the body of a TestRealProcesses child process.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv("BATON_SQLITE_HELPER_DB")
	if path == "" {
		t.Skip("helper process for TestRealProcesses")
	}
	id := os.Getenv("BATON_SQLITE_HELPER_ID")
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for b := range helperBatches {
		var batch store.Batch
		for i := range helperRows {
			batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: fmt.Sprintf("%s-%d-%d", id, b, i),
				RunID: "multi", Key: fmt.Sprintf("%s/%d/%d", id, b, i), State: store.TaskCompleted})
		}
		batch.Runs = []store.Run{{ID: "multi", State: store.RunRunning, OwnerHost: id}}
		if err := s.BatchWrite(ctx, batch); err != nil {
			t.Fatalf("BatchWrite: %v", err)
		}
		if _, err := s.JournalList(ctx, "multi"); err != nil {
			t.Fatalf("JournalList: %v", err)
		}
		if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "multi",
			From: []store.RunState{store.RunRunning}, To: store.RunRunning, NextAttempt: true, Cause: "p" + id}); err != nil {
			t.Fatalf("RunTransition: %v", err)
		}
	}
}

// TestEmptyJSONIsNotNil checks the documented round trip of an empty, non-nil
// json.RawMessage (the conformance suite only uses valid JSON).
func TestEmptyJSONIsNotNil(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	if err := s.BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "e", Parameters: json.RawMessage{}}}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.RunGet(ctx, "e")
	if err != nil {
		t.Fatal(err)
	}
	if r.Parameters == nil || len(r.Parameters) != 0 || r.Result != nil {
		t.Errorf("Parameters = %#v, Result = %#v; want non-nil empty and nil", r.Parameters, r.Result)
	}
}

// TestNotifierSlowSubscriberAndClose checks that a subscriber that never
// reads does not block writers, that Close closes the subscribers' channels
// and that Subscribe fails after Close.
func TestNotifierSlowSubscriberAndClose(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	slow, err := s.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var batch store.Batch
	for i := range sqlcore.SubscriberBuffer + 50 {
		batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: fmt.Sprint(i), RunID: "r", Key: fmt.Sprint(i),
			Queue: fmt.Sprintf("q%d", i), State: store.TaskPending})
	}
	done := make(chan error, 1)
	go func() { done <- s.BatchWrite(ctx, batch) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("BatchWrite blocked on a subscriber that does not read")
	}
	if n := len(slow); n != sqlcore.SubscriberBuffer {
		t.Errorf("%d notifications buffered, want %d (the rest dropped)", n, sqlcore.SubscriberBuffer)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range slow {
		n++
	}
	if n != sqlcore.SubscriberBuffer {
		t.Errorf("drained %d notifications after Close, want %d", n, sqlcore.SubscriberBuffer)
	}
	if _, err := s.Subscribe(ctx); err == nil {
		t.Errorf("Subscribe after Close succeeded")
	}
}

// TestStatementCache checks that the statements of the core's write
// transactions are prepared once on the write connection: a transaction
// prepares what it lacks for itself, and the cache holds it for the next.
func TestStatementCache(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	const q = "SELECT count(*) FROM workers WHERE id = $1"
	d := dialect{SQLDB: sqlcore.SQLDB{DB: s.read}, s: s}
	for i := range 3 {
		var n int
		var cached bool
		err := d.WriteTx(ctx, "test", func(tx sqlcore.Tx) error {
			cached = s.cache.get(q) != nil
			return tx.QueryRow(ctx, q, "w").Scan(&n)
		})
		if err != nil || n != 0 {
			t.Fatalf("transaction %d: %d, %v", i, n, err)
		}
		if cached != (i > 0) {
			t.Errorf("transaction %d: statement cached before: %v", i, cached)
		}
	}
}
