package progcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// waitProgram defines a flow "approve" that waits for input "ok" and
// returns it.
func waitProgram() Program {
	return Program{Name: "prog", Flows: []*engine.FlowDef{{
		Name: "approve",
		Body: func(fc *engine.FlowCtx, _ json.RawMessage) (any, error) {
			v, err := fc.Wait(store.WaitSpec{Kind: store.WaitInput, Key: "ok"}, func(raw json.RawMessage) (any, error) {
				var s string
				err := json.Unmarshal(raw, &s)
				return s, err
			}).Wait(fc.Context())
			if err != nil {
				return nil, err
			}
			return "approved: " + v.(string), nil
		},
	}}}
}

// TestInterruptedWaitStaysPaused: interrupting `run` while its run waits
// exits 3 and leaves the run PAUSED; after its input arrives, `resume`
// continues it from the journal in another process and it completes.
func TestInterruptedWaitStaysPaused(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		done <- Main(ctx, []string{"--db", db, "run", "approve"}, waitProgram(), env)
	}()
	var run store.Run
	for deadline := time.Now().Add(20 * time.Second); ; {
		rs, err := st.RunList(context.Background(), store.RunListParams{Flow: "approve", Limit: 1})
		if err == nil && len(rs) == 1 && rs[0].State == store.RunPaused {
			run = rs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never paused: %v %v", rs, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	interrupt()
	if code := <-done; code != cli.ExitPaused || !strings.Contains(errb.String(), "resume "+run.ID) {
		t.Fatalf("interrupted run: exit %d: %s; want 3 with how to resume", code, errb.String())
	}
	if r, _ := st.RunGet(context.Background(), run.ID); r.State != store.RunPaused {
		t.Fatalf("interrupted run is %s, want PAUSED", r.State)
	}
	if _, err := st.InputSend(context.Background(), store.InputSendParams{RunID: run.ID, Key: "ok", Value: json.RawMessage(`"yes"`)}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := mainRun(t, waitProgram(), db, "resume", run.ID)
	if code != cli.ExitOK || !strings.Contains(stdout, "approved: yes") {
		t.Fatalf("resume: exit %d: %s%s", code, stdout, stderr)
	}
	if code, _, stderr := mainRun(t, waitProgram(), db, "resume", run.ID); code != cli.ExitUsage || !strings.Contains(stderr, "not PAUSED") {
		t.Errorf("resume of a completed run: exit %d: %s", code, stderr)
	}
}
