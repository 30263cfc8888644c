package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/pgtest"
	"github.com/batonhq/baton/internal/store/postgres"
	"github.com/batonhq/baton/internal/store/sqlite"
	"github.com/batonhq/baton/internal/worker"
)

// The k-NN-like flow of these tests, as examples/knn: generate a dataset
// (about 28 KB of JSON), then evaluate each k of a list on it, one task per
// k on the queue bq, each input carrying the whole dataset beside its k.

type knnPoint struct {
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Label int     `json:"label"`
}

type knnData struct {
	Train []knnPoint `json:"train"`
	Test  []knnPoint `json:"test"`
}

// knnEval is an evaluation's input. Tag keeps concurrent tests apart.
type knnEval struct {
	Tag   string     `json:"tag"`
	K     int        `json:"k"`
	Train []knnPoint `json:"train"`
	Test  []knnPoint `json:"test"`
}

type knnParams struct {
	Tag    string `json:"tag"`
	Points int    `json:"points"`
	Ks     []int  `json:"ks"`
}

// knnFailOnce holds "tag/k" for evaluations that fail (permanently, so the
// run fails) the first time they run.
var knnFailOnce sync.Map

var (
	knnGenerate = baton.Task("worker-test.knn-generate", func(_ context.Context, n int) (knnData, error) {
		var d knnData
		for i := range n {
			p := knnPoint{X: float64(i%97) + 0.125, Y: float64(i%89) - 0.5, Label: i % 3}
			if i%4 == 0 {
				d.Test = append(d.Test, p)
			} else {
				d.Train = append(d.Train, p)
			}
		}
		return d, nil
	})
	// knnEvaluate returns a checksum of what it received: the k and the
	// sizes of the two sets.
	knnEvaluate = baton.Task("worker-test.knn-evaluate", func(_ context.Context, in knnEval) (int, error) {
		if _, ok := knnFailOnce.LoadAndDelete(fmt.Sprint(in.Tag, "/", in.K)); ok {
			return 0, baton.Permanent(fmt.Errorf("k=%d fails once", in.K))
		}
		return knnSum(in.K, len(in.Train), len(in.Test)), nil
	}, baton.Queue("bq"))
	knnFlow = baton.Flow("worker-test.knn", func(ctx baton.Context, p knnParams) ([]int, error) {
		d, err := knnGenerate.Run(ctx, p.Points)
		if err != nil {
			return nil, err
		}
		jobs := make([]knnEval, len(p.Ks))
		for i, k := range p.Ks {
			jobs[i] = knnEval{Tag: p.Tag, K: k, Train: d.Train, Test: d.Test}
		}
		// Every evaluation is waited for, so all are recorded when one fails.
		out := make([]int, len(jobs))
		var first error
		for i, f := range knnEvaluate.Map(ctx, jobs) {
			v, err := f.Wait(ctx)
			if err != nil && first == nil {
				first = err
			}
			out[i] = v
		}
		return out, first
	})
)

func knnSum(k, train, test int) int { return k*1_000_000 + train*1000 + test }

// knnRun are the parameters of a run in test t: 800 points, 7 values of k.
func knnRun(t *testing.T) knnParams {
	return knnParams{Tag: t.Name(), Points: 800, Ks: []int{1, 3, 5, 7, 9, 11, 13}}
}

func (p knnParams) want() []int {
	out := make([]int, len(p.Ks))
	for i, k := range p.Ks {
		out[i] = knnSum(k, p.Points*3/4, p.Points/4)
	}
	return out
}

// eachBackend runs fn on a fresh SQLite store and, under
// scripts/with-postgres.sh, on a fresh PostgreSQL schema; blobs is the
// store's blob directory.
func eachBackend(t *testing.T, fn func(t *testing.T, st store.Store, blobs *blob.Store)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			var st store.Store
			var err error
			if backend == "sqlite" {
				st, err = sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
			} else {
				st, err = postgres.Open(ctx, pgtest.SchemaURL(t))
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			blobs, err := blob.Open(filepath.Join(dir, "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			fn(t, st, blobs)
		})
	}
}

// blobFiles counts the blobs in a blob directory and their bytes.
func blobFiles(t *testing.T, blobs *blob.Store) (n int, size int64) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(blobs.Dir(), "sha256"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n, size = n+1, size+fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

// checkStoredOnce checks that the evaluations of the run share one input
// blob holding the dataset, that it is the only blob of the store, that
// each task run keeps only its small fields inline, and that the views
// show every input whole.
func checkStoredOnce(t *testing.T, st store.Store, blobs *blob.Store, runID string, p knnParams, wantEvals int) {
	t.Helper()
	ctx := context.Background()
	trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	var data knnData
	refs := map[string]int{}
	evals, inline := 0, 0
	for _, tr := range trs {
		switch tr.Task {
		case knnGenerate.Name():
			if tr.ResultRef != "" || json.Unmarshal(tr.Result, &data) != nil {
				t.Fatalf("generate's result: %.80s (ref %q)", tr.Result, tr.ResultRef)
			}
		case knnEvaluate.Name():
			evals++
			refs[tr.InputRef]++
			inline += len(tr.Input)
		}
	}
	if evals != wantEvals || len(refs) != 1 || refs[""] != 0 {
		t.Fatalf("%d evaluations with input refs %v; want %d sharing one ref", evals, refs, wantEvals)
	}
	n, size := blobFiles(t, blobs)
	train, _ := json.Marshal(data.Train)
	test, _ := json.Marshal(data.Test)
	dataset := int64(len(train) + len(test))
	t.Logf("%d evaluations: one blob of %d bytes (the dataset is %d), %d bytes inline in all", evals, size, dataset, inline)
	if n != 1 || size < dataset || size > dataset+10 {
		t.Errorf("the store has %d blobs of %d bytes; want the dataset (%d bytes) once", n, size, dataset)
	}
	if inline > 200*evals {
		t.Errorf("the evaluations keep %d bytes of input inline, want the small fields only", inline)
	}
	for _, tr := range trs {
		if tr.Task != knnEvaluate.Name() {
			continue
		}
		v, err := api.TaskRunViewOf(tr, blobs)
		if err != nil {
			t.Fatal(err)
		}
		var in knnEval
		if err := json.Unmarshal(v.Input, &in); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(knnEval{Tag: p.Tag, K: in.K, Train: data.Train, Test: data.Test})
		if string(v.Input) != string(want) || v.InputRef != tr.InputRef {
			t.Errorf("view of %s: input %.60s… (ref %q), want %.60s… (ref %q)", tr.Key, v.Input, v.InputRef, want, tr.InputRef)
		}
	}
}

// TestInputBlobSharedLocally: a local run of the k-NN-like flow stores the
// dataset that its 7 evaluations receive once, in one blob; a retry that
// runs a failed evaluation again records the same reference and stores
// nothing more; the views show the inputs whole.
func TestInputBlobSharedLocally(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store, blobs *blob.Store) {
		ctx := context.Background()
		eng, err := engine.New(engine.Config{Store: st, Blobs: blobs, LogOutput: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		flows := progcmd.ProgramOf("", knnFlow).Flows
		p := knnRun(t)
		knnFailOnce.Store(p.Tag+"/5", true)
		params, _ := json.Marshal(p)
		out, err := eng.Start(ctx, flows[0], params)
		if err != nil || out.Run.State != store.RunFailed {
			t.Fatalf("first attempt: %s, %v (%v); want FAILED", out.Run.State, err, out.Err)
		}
		checkStoredOnce(t, st, blobs, out.Run.ID, p, len(p.Ks))

		out, err = eng.Retry(ctx, flows[0], out.Run.ID, engine.RetryOptions{})
		if err != nil || out.Run.State != store.RunCompleted {
			t.Fatalf("retry: %s, %v (%v); want COMPLETED", out.Run.State, err, out.Err)
		}
		var got []int
		raw, _ := eng.LoadResult(out.Run.Result, out.Run.ResultRef)
		if json.Unmarshal(raw, &got); fmt.Sprint(got) != fmt.Sprint(p.want()) {
			t.Errorf("result %v, want %v", got, p.want())
		}
		if a := out.Run.Attempts; len(a) != 2 || a[1].Steps == nil || a[1].Steps.Ran != 1 || a[1].Steps.Reused != len(p.Ks) {
			t.Errorf("attempts %+v: want the retry to run the failed evaluation and reuse the other %d steps", a, len(p.Ks))
		}
		checkStoredOnce(t, st, blobs, out.Run.ID, p, len(p.Ks)+1)
	})
}

// blobRequests counts the requests for blobs that reach a server.
type blobRequests struct {
	next     http.Handler
	put, get atomic.Int64
}

func (b *blobRequests) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, apitype.Prefix+"/blobs") {
		switch r.Method {
		case http.MethodPut:
			b.put.Add(1)
		case http.MethodGet:
			b.get.Add(1)
		}
	}
	b.next.ServeHTTP(w, r)
}

// TestInputBlobSharedOnWorkers: the same flow on a worker, its evaluations
// distributed on the queue bq (4 slots): the flow's engine writes the
// dataset to the server once, the worker that runs the evaluations reads it
// once (7 evaluations and a retried one), the server stores it once, and
// the API shows each input whole.
func TestInputBlobSharedOnWorkers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store, blobs *blob.Store) {
		ctx := context.Background()
		srv, err := server.New(server.Config{Store: st, Blobs: blobs, LeaseTimeout: 30 * time.Second,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
		reqs := &blobRequests{next: srv.Handler()}
		ts := httptest.NewServer(reqs)
		cl, err := client.New(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := remote.New(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		prog := progcmd.ProgramOf("", knnFlow)
		wk, err := worker.New(worker.Config{Client: rc, Name: t.Name(), Queues: []string{apitype.DefaultQueue},
			Slots: map[string]int{"bq": 4}, Flows: prog.Flows, Tasks: prog.Tasks,
			Logger: slog.New(slog.DiscardHandler), LogOutput: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- wk.Run(wctx) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
			ts.Close()
			srv.Stop()
		})

		p := knnRun(t)
		knnFailOnce.Store(p.Tag+"/5", true)
		params, _ := json.Marshal(p)
		run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: knnFlow.Name(), Parameters: params})
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, cl, run.ID, "FAILED")
		checkStoredOnce(t, st, blobs, run.ID, p, len(p.Ks))
		if _, err := cl.RetryRun(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		d := waitState(t, cl, run.ID, "COMPLETED")
		var got []int
		if json.Unmarshal(d.Result, &got); fmt.Sprint(got) != fmt.Sprint(p.want()) {
			t.Errorf("result %v, want %v: an evaluation did not receive the dataset", got, p.want())
		}
		checkStoredOnce(t, st, blobs, run.ID, p, len(p.Ks)+1)
		if put, get := reqs.put.Load(), reqs.get.Load(); put != 1 || get != 1 {
			t.Errorf("%d blob uploads and %d downloads for %d evaluations sharing one dataset, want 1 and 1",
				put, get, len(p.Ks)+1)
		}
		shown := 0
		for _, tr := range d.TaskRuns {
			if tr.Task != knnEvaluate.Name() {
				continue
			}
			var in knnEval
			if err := json.Unmarshal(tr.Input, &in); err != nil || tr.InputRef == "" || len(in.Train) != p.Points*3/4 {
				t.Errorf("GET /runs/%s shows %s's input as %.60s… (ref %q)", run.ID, tr.Key, tr.Input, tr.InputRef)
			}
			shown++
		}
		if shown != len(p.Ks)+1 {
			t.Errorf("the API shows %d evaluations, want %d", shown, len(p.Ks)+1)
		}
	})
}

var (
	bigCached = baton.Task("worker-test.big-cached", func(_ context.Context, tag string) (string, error) {
		return tag + strings.Repeat(".", engine.BlobThreshold), nil
	}, baton.Cache(baton.CachePolicy{}))
	bigCachedFlow = baton.Flow("worker-test.big-cached", func(ctx baton.Context, tag string) (int, error) {
		s, err := bigCached.Run(ctx, tag)
		return len(s), err
	})
)

// TestCacheHitKeepsItsResultBlob: a cache hit records the cached result's
// blob reference in a new task run, so it stores the blob again: a
// retention pass deleting the run that made the entry (and the entry) then
// keeps the blob, which was written just now.
func TestCacheHitKeepsItsResultBlob(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store, blobs *blob.Store) {
		ctx := context.Background()
		eng, err := engine.New(engine.Config{Store: st, Blobs: blobs, LogOutput: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		flow := progcmd.ProgramOf("", bigCachedFlow).Flows[0]
		params, _ := json.Marshal(t.Name())
		first, err := eng.Start(ctx, flow, params)
		if err != nil || first.Run.State != store.RunCompleted {
			t.Fatalf("first run: %s, %v", first.Run.State, err)
		}
		trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: first.Run.ID})
		if err != nil || len(trs) != 1 || trs[0].ResultRef == "" {
			t.Fatalf("first run's task runs: %+v, %v; want one with a result blob", trs, err)
		}
		ref := trs[0].ResultRef
		h := strings.TrimPrefix(ref, "sha256:")
		path := filepath.Join(blobs.Dir(), "sha256", h[:2], h[2:])
		old := time.Now().Add(-2 * blob.Grace)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}

		// A new engine: nothing remembered of the first run's writes.
		eng2, err := engine.New(engine.Config{Store: st, Blobs: blobs, LogOutput: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		defer eng2.Close()
		second, err := eng2.Start(ctx, flow, params)
		if err != nil || second.Run.State != store.RunCompleted {
			t.Fatalf("second run: %s, %v", second.Run.State, err)
		}
		trs, err = st.TaskRunList(ctx, store.TaskRunListParams{RunID: second.Run.ID})
		if err != nil || len(trs) != 1 || trs[0].State != store.TaskCached || trs[0].ResultRef != ref {
			t.Fatalf("second run's task runs: %+v, %v; want one CACHED with the same blob", trs, err)
		}
		if removed, err := blobs.Remove(ref, blob.Grace); err != nil || removed {
			t.Errorf("Remove after the cache hit = %v, %v; want the blob kept", removed, err)
		}
	})
}
