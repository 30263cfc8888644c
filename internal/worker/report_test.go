package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/store"
)

// fakeServer speaks enough of the worker protocol to hand out one task run
// and to answer completions as the test says.
type fakeServer struct {
	claimed  atomic.Bool
	handOut  int                                           // task runs the first claim hands out (default 1)
	answer   func(n int, cs []store.TaskRunCompletion) int // HTTP status of the n-th completion report
	mu       sync.Mutex
	reports  [][]store.TaskRunCompletion
	holdings []api.Holding
}

// report records a completion report (sent alone or in a claim) and
// returns the status the test answers it with.
func (f *fakeServer) report(cs []store.TaskRunCompletion) int {
	f.mu.Lock()
	f.reports = append(f.reports, cs)
	n := len(f.reports)
	f.mu.Unlock()
	return f.answer(n, cs)
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /api/v1/workers", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 201, api.Registered{ID: "w1", LeaseTimeoutMS: 15000, HeartbeatIntervalMS: 50})
	})
	mux.HandleFunc("POST /api/v1/workers/w1/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, api.Heartbeat{Cancel: []string{}})
	})
	mux.HandleFunc("POST /api/v1/workers/w1/claim", func(w http.ResponseWriter, r *http.Request) {
		var req api.Claim
		json.NewDecoder(r.Body).Decode(&req)
		out := api.Claimed{Runs: []store.Run{}, TaskRuns: []store.TaskRun{}}
		if len(req.Completions) > 0 { // a report riding on a claim
			if status := f.report(req.Completions); status != 200 {
				reply(w, status, apitype.ErrorResponse{Error: apitype.ErrorBody{Code: "x", Message: "refused"}})
				return
			}
			reply(w, 200, out)
			return
		}
		if !f.claimed.Swap(true) {
			out.TaskRuns = append(out.TaskRuns, store.TaskRun{ID: "tr1", RunID: "r1", Key: "k", Task: "t",
				Queue: "default", State: store.TaskRunning, Input: json.RawMessage(`1`)})
			for i := 2; i <= f.handOut; i++ {
				out.TaskRuns = append(out.TaskRuns, store.TaskRun{ID: fmt.Sprintf("tr%d", i), RunID: "r1", Key: fmt.Sprintf("k%d", i),
					Task: "t", Queue: "default", State: store.TaskRunning, Input: json.RawMessage(strconv.Itoa(i))})
			}
		} else {
			select {
			case <-time.After(20 * time.Millisecond):
			case <-r.Context().Done():
			}
		}
		reply(w, 200, out)
	})
	mux.HandleFunc("POST /api/v1/workers/w1/complete", func(w http.ResponseWriter, r *http.Request) {
		var req api.Complete
		json.NewDecoder(r.Body).Decode(&req)
		if status := f.report(req.Completions); status != 200 {
			reply(w, status, apitype.ErrorResponse{Error: apitype.ErrorBody{Code: "x", Message: "refused"}})
			return
		}
		reply(w, 200, api.Completed{Applied: []store.TaskRunRef{}})
	})
	mux.HandleFunc("POST /api/v1/workers/w1/holding", func(w http.ResponseWriter, r *http.Request) {
		var h api.Holding
		json.NewDecoder(r.Body).Decode(&h)
		f.mu.Lock()
		f.holdings = append(f.holdings, h)
		f.mu.Unlock()
		w.WriteHeader(204)
	})
	mux.HandleFunc("DELETE /api/v1/workers/w1", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	return mux
}

// TestCompletionReports: a completion report that fails transiently is
// sent again until it is taken; one the server refuses for good is reported
// FAILED, and one refused even so is given back through the holding
// report. In no case does the worker keep holding the task run.
func TestCompletionReports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		answer      func(n int, cs []store.TaskRunCompletion) int
		wantState   store.TaskState // of the last report
		wantRelease bool            // a holding report without the task run
	}{
		{"transient failures are retried", func(n int, _ []store.TaskRunCompletion) int {
			if n < 4 {
				return http.StatusServiceUnavailable
			}
			return 200
		}, store.TaskCompleted, false},
		{"a refused completion is reported FAILED", func(_ int, cs []store.TaskRunCompletion) int {
			if cs[0].State == store.TaskCompleted {
				return http.StatusInternalServerError
			}
			return 200
		}, store.TaskFailed, false},
		{"a completion refused even as FAILED is given back", func(int, []store.TaskRunCompletion) int {
			return http.StatusBadRequest
		}, store.TaskFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{answer: tt.answer}
			ts := httptest.NewServer(f.handler())
			defer ts.Close()
			c, _ := remote.New(ts.URL)
			w, err := New(Config{Client: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: io.Discard,
				Tasks: []*engine.TaskDef{{Name: "t", Invoke: func(context.Context, json.RawMessage) (any, error) { return 1, nil }}}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			ref := store.TaskRunRef{RunID: "r1", Key: "k", ID: "tr1"}
			deadline := time.Now().Add(10 * time.Second)
			for {
				w.mu.Lock()
				_, held := w.held[ref]
				w.mu.Unlock()
				f.mu.Lock()
				n, released := len(f.reports), false
				for _, h := range f.holdings {
					released = released || len(h.TaskRuns) == 0
				}
				f.mu.Unlock()
				if n > 0 && !held && (!tt.wantRelease || released) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 10s: %d reports, task run held %v, released %v", n, held, released)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			f.mu.Lock()
			defer f.mu.Unlock()
			last := f.reports[len(f.reports)-1]
			if len(last) != 1 || last[0].Ref != ref || last[0].State != tt.wantState {
				t.Errorf("last report %+v; want %s of %v", last, tt.wantState, ref)
			}
		})
	}
}

// TestReportCarriesTasksFinishingTogether: task runs claimed together that
// finish moments apart are reported (and their slots claimed) in one
// request, not the first alone and the rest a round trip later.
func TestReportCarriesTasksFinishingTogether(t *testing.T) {
	t.Parallel()
	const n = 4
	f := &fakeServer{handOut: n, answer: func(int, []store.TaskRunCompletion) int { return 200 }}
	ts := httptest.NewServer(f.handler())
	defer ts.Close()
	c, _ := remote.New(ts.URL)
	release := make([]chan struct{}, n+1)
	for i := range release {
		release[i] = make(chan struct{})
	}
	w, err := New(Config{Client: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: io.Discard,
		// The linger is on a fake clock that never moves: only the task
		// runs finishing can end it, however slow the machine.
		Slots: map[string]int{"default": n}, ReportLinger: 10 * time.Second, Clock: clock.NewFake(time.Now()),
		Tasks: []*engine.TaskDef{{Name: "t", Invoke: func(ctx context.Context, in json.RawMessage) (any, error) {
			i, _ := strconv.Atoi(string(in))
			select {
			case <-release[i]:
			case <-ctx.Done():
			}
			return i, nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	running := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.slotsUse["default"]
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("after 10s: not %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("all running", func() bool { return running() == n })
	// One after the other, each once the previous one has finished.
	for i := 1; i <= n; i++ {
		close(release[i])
		waitFor(fmt.Sprintf("task %d finished", i), func() bool { return running() == n-i })
	}
	waitFor("reported", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		k := 0
		for _, r := range f.reports {
			k += len(r)
		}
		return k == n
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reports) != 1 {
		t.Errorf("%d reports of sizes %v; want the %d completions in one", len(f.reports), sizes(f.reports), n)
	}
}

func sizes(rs [][]store.TaskRunCompletion) []int {
	var out []int
	for _, r := range rs {
		out = append(out, len(r))
	}
	return out
}
