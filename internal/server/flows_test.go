package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/postgres"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// eachSharedStore runs fn with a function that opens another handle on one
// database each time it is called (as another server process would): a
// SQLite file and, when BATON_TEST_POSTGRES is set, a PostgreSQL schema.
func eachSharedStore(t *testing.T, fn func(t *testing.T, open func() store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "baton.db")
		fn(t, func() store.Store {
			st, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		u := os.Getenv("BATON_TEST_POSTGRES")
		if u == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("BATON_TEST_POSTGRES is not set; run the tests through scripts/with-postgres.sh")
			}
			t.Skip("BATON_TEST_POSTGRES is not set")
		}
		schema := freshSchema(t, u)
		fn(t, func() store.Store {
			st, err := postgres.Open(context.Background(), schema)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

// TestCreateRunValidatesOnEveryServer: the parameter schema a worker
// registers with one server is in the store, so another server sharing the
// store, and a server started after the registration (a restart), answer
// 400 naming the parameter, and accept good parameters merged over the
// defaults; a later registration of the flow through another server is
// seen within the cache's few seconds.
func TestCreateRunValidatesOnEveryServer(t *testing.T) {
	t.Parallel()
	eachSharedStore(t, func(t *testing.T, open func() store.Store) {
		a, b := setupWith(t, open()), setupWith(t, open())
		// b reads the flow before any registration: it caches that no
		// worker registered it, which must not outlive the cache's TTL.
		if status, body := b.call(t, "POST", "/api/v1/runs", `{"flow":"count","parameters":{"count":"early"}}`); status != 201 {
			t.Fatalf("create before any registration: %d %v; want 201 (accepted as given)", status, body)
		}
		register(t, a)
		bad := `{"flow":"count","parameters":{"count":"abc"}}`
		want := `parameter "count": expected integer, got string "abc"`
		// b may use what it read before the registration for up to its
		// cache's TTL, and no longer.
		b.clk.Advance(server.FlowCacheTTL)
		status, body := b.call(t, "POST", "/api/v1/runs", bad)
		if status != 400 || errCode(body) != apitype.CodeBadRequest || !strings.Contains(errMsg(body), want) {
			t.Fatalf("bad run through the other server: %d %v; want 400 saying %q", status, body, want)
		}
		for name, srv := range map[string]*bundle{"the other server": b, "a server started after the registration": setupWith(t, open())} {
			status, body := srv.call(t, "POST", "/api/v1/runs", `{"flow":"count","parameters":{}}`)
			if status != 400 || !strings.Contains(errMsg(body), `missing required parameter "count" (integer)`) {
				t.Errorf("%s: run without its required parameter: %d %v; want 400 naming count", name, status, body)
			}
			status, body = srv.call(t, "POST", "/api/v1/runs", bad)
			if status != 400 || !strings.Contains(errMsg(body), want) {
				t.Errorf("%s: bad run: %d %v; want 400 saying %q", name, status, body, want)
			}
			status, body = srv.call(t, "POST", "/api/v1/runs", `{"flow":"count","parameters":{"count":2}}`)
			if status != 201 {
				t.Fatalf("%s: good run: %d %v", name, status, body)
			}
			run, err := srv.st.RunGet(context.Background(), body["id"].(string))
			if err != nil || !sameJSON(t, run.Parameters, `{"count":2,"name":"d"}`) {
				t.Errorf("%s: recorded parameters %s %v; want them merged over the defaults", name, run.Parameters, err)
			}
		}

		// A new version of the flow registers through b: a, which cached
		// the first registration, follows within its cache's TTL.
		flows := []api.FlowInfo{{Name: "count", Parameters: params.Schema(reflect.TypeFor[string]()), Defaults: json.RawMessage(`"x"`)}}
		if _, err := b.w.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w2", Queues: []string{"default"},
			Flows: flows, Capacity: 1}); err != nil {
			t.Fatal(err)
		}
		a.clk.Advance(server.FlowCacheTTL)
		status, body = a.call(t, "POST", "/api/v1/runs", `{"flow":"count","parameters":"now a string"}`)
		if status != 201 {
			t.Fatalf("run of the re-registered flow through the first server: %d %v; want 201", status, body)
		}
		status, body = a.call(t, "POST", "/api/v1/runs", `{"flow":"count","parameters":{"count":1}}`)
		if status != 400 || !strings.Contains(errMsg(body), "expected string") {
			t.Errorf("old parameters after the re-registration: %d %v; want 400 expecting a string", status, body)
		}
	})
}
