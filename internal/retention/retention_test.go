package retention_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/retention"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/pgtest"
	"github.com/batonhq/baton/internal/store/postgres"
	"github.com/batonhq/baton/internal/store/sqlite"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eachStore runs fn on a fresh SQLite store and, under
// scripts/with-postgres.sh, on a fresh PostgreSQL schema, each with a blob
// directory of its own.
func eachStore(t *testing.T, fn func(t *testing.T, st store.Store, blobs *blob.Store)) {
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

// put stores data and makes its blob look written long ago (past
// blob.Grace), as blobs of old runs are.
func put(t *testing.T, blobs *blob.Store, data string) string {
	t.Helper()
	ref, err := blobs.Put([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	h := strings.TrimPrefix(ref, "sha256:")
	old := time.Now().Add(-2 * blob.Grace)
	if err := os.Chtimes(filepath.Join(blobs.Dir(), "sha256", h[:2], h[2:]), old, old); err != nil {
		t.Fatal(err)
	}
	return ref
}

// runWith is a run in state (ended ended ago when final) with one task run
// whose input's large parts are the blob input and whose result is the
// blob result ("" for none).
func runWith(id string, state store.RunState, ended time.Duration, input, result string) store.Batch {
	now := time.Now()
	r := store.Run{ID: id, Flow: "knn", State: state, Attempt: 1, CreatedAt: now.Add(-ended - time.Minute)}
	if state.Final() {
		r.EndedAt = now.Add(-ended)
	}
	tr := store.TaskRun{ID: id + "-t", RunID: id, Key: "evaluate/1.0", Task: "evaluate", State: store.TaskCompleted,
		Input: []byte(`{"parts_at":[2,3],"value":{"k":1,"train":null,"test":null}}`), InputRef: input,
		Result: []byte(`{"k":1}`), ResultRef: result, CreatedAt: r.CreatedAt}
	if result != "" {
		tr.Result = nil
	}
	return store.Batch{Runs: []store.Run{r}, TaskRuns: []store.TaskRun{tr}}
}

func write(t *testing.T, st store.Store, b store.Batch) {
	t.Helper()
	if err := st.BatchWrite(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func exists(blobs *blob.Store, ref string) bool {
	_, err := blobs.Get(ref)
	return err == nil
}

// TestKeepsReferencedBlobs: retention deletes a blob only when no run,
// task run (result or input) or cache entry references it any more, and
// not one written within blob.Grace.
func TestKeepsReferencedBlobs(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store, blobs *blob.Store) {
		ctx := context.Background()
		dataset := put(t, blobs, `[[{"x":1}],[{"x":2}]]`)
		oldResult := put(t, blobs, `"the old run's own result"`)
		write(t, st, runWith("old", store.RunCompleted, 48*time.Hour, dataset, oldResult))
		write(t, st, runWith("live", store.RunRunning, 0, dataset, ""))
		fresh, err := blobs.Put([]byte(`"written a moment ago"`))
		if err != nil {
			t.Fatal(err)
		}
		write(t, st, runWith("old-fresh", store.RunFailed, 48*time.Hour, "", fresh))

		res, err := retention.Run(ctx, st, blobs, time.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if res.DeletedRuns != 2 || res.DeletedBlobs != 1 {
			t.Errorf("deleted %d runs and %d blobs, want 2 and 1", res.DeletedRuns, res.DeletedBlobs)
		}
		if exists(blobs, oldResult) {
			t.Error("the blob only the deleted run used is still there")
		}
		if !exists(blobs, dataset) {
			t.Fatal("the input blob that a remaining run shares was deleted")
		}
		if !exists(blobs, fresh) {
			t.Error("a blob written within the grace period was deleted")
		}

		// Once the last run that shares the dataset is deleted, so is it.
		write(t, st, runWith("live", store.RunCompleted, 48*time.Hour, dataset, ""))
		if res, err = retention.Run(ctx, st, blobs, time.Now().Add(-24*time.Hour)); err != nil || res.DeletedRuns != 1 || res.DeletedBlobs != 1 {
			t.Errorf("second pass: %+v, %v; want 1 run and 1 blob", res, err)
		}
		if exists(blobs, dataset) {
			t.Error("the dataset outlived the last run that used it")
		}
	})
}

// racingStore runs during after RetentionDelete has deleted runs and
// answered which blobs nothing references, before retention deletes them:
// a writer that records one of them again at that moment.
type racingStore struct {
	store.Store
	during func()
}

func (s racingStore) RetentionDelete(ctx context.Context, p store.RetentionParams) (store.RetentionResult, error) {
	res, err := s.Store.RetentionDelete(ctx, p)
	if err == nil && res.Runs > 0 && s.during != nil {
		s.during()
	}
	return res, err
}

// TestRacesPutOfSameContent: a new run stores (Put) a dataset that an old
// run being deleted also used, after the store said nothing else uses it
// and before retention deletes it, then records its reference. The blob
// must survive. (Before Put refreshed a blob's time and Remove checked it,
// retention deleted it and the new run's input dangled.)
func TestRacesPutOfSameContent(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store, blobs *blob.Store) {
		ctx := context.Background()
		const data = `[[{"x":1,"y":2,"label":0}],[{"x":3,"y":4,"label":1}]]`
		ref := put(t, blobs, data)
		write(t, st, runWith("old", store.RunCompleted, 48*time.Hour, ref, ""))
		raced := false
		rs := racingStore{Store: st, during: func() {
			raced = true
			again, err := blobs.Put([]byte(data))
			if err != nil || again != ref {
				t.Errorf("Put = %q, %v", again, err)
			}
			write(t, st, runWith("new", store.RunRunning, 0, again, ""))
		}}
		if _, err := retention.Run(ctx, rs, blobs, time.Now().Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !raced {
			t.Fatal("the old run was not deleted")
		}
		if got, err := blobs.Get(ref); err != nil || string(got) != data {
			t.Fatalf("the new run's input blob: %q, %v; want it kept", got, err)
		}
	})
}
