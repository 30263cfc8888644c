package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/postgres"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// eachStore runs fn on a server over SQLite and, when BATON_TEST_POSTGRES
// names a database (scripts/with-postgres.sh), over PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, b *bundle)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "baton.db"))
		if err != nil {
			t.Fatal(err)
		}
		fn(t, setupWith(t, st))
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
		st, err := postgres.Open(context.Background(), freshSchema(t, u))
		if err != nil {
			t.Fatal(err)
		}
		fn(t, setupWith(t, st))
	})
}

// freshSchema creates a schema dropped when the test ends and returns u
// with it as search_path.
func freshSchema(t *testing.T, u string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "srv_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), u)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	q.Set("pool_max_conns", "4")
	pu.RawQuery = q.Encode()
	return pu.String()
}

type inner struct {
	Host string `json:"host" baton:"required"`
	Port int    `json:"port,omitempty"`
}

type countParams struct {
	Count int      `json:"count" baton:"required"`
	Small int8     `json:"small,omitempty"`
	Name  string   `json:"name,omitempty"`
	DB    *inner   `json:"db,omitempty"`
	Tags  []string `json:"tags,omitempty"`
}

// register registers a worker serving flows "count" (countParams, default
// {"count":0,"name":"d"}) and "single" (an int, default 7), as
// internal/worker does, and returns the schema of countParams.
func register(t *testing.T, b *bundle) {
	t.Helper()
	flows := []api.FlowInfo{
		{Name: "count", Parameters: params.Schema(reflect.TypeFor[countParams]()), Defaults: json.RawMessage(`{"count":0,"name":"d"}`)},
		{Name: "single", Parameters: params.Schema(reflect.TypeFor[int]()), Defaults: json.RawMessage(`7`)},
	}
	if _, err := b.w.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w", Queues: []string{"default"}, Flows: flows, Capacity: 1}); err != nil {
		t.Fatal(err)
	}
}

// TestCreateRunValidatesParameters: issue 6 items 6, 7 and 5: the
// parameters of a registered flow are checked against its schema with
// the command line's validation and messages; names and keys with NUL or
// invalid UTF-8 are refused; nothing is recorded.
func TestCreateRunValidatesParameters(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		register(t, b)
		tests := []struct {
			name, body, want string
		}{
			{"string for an int", `{"flow":"count","parameters":{"count":"abc"}}`, `parameter "count": expected integer, got string "abc"`},
			{"out of range", `{"flow":"count","parameters":{"count":1,"small":300}}`, `parameter "small": 300 is out of range for int8 (-128 to 127)`},
			{"fraction", `{"flow":"count","parameters":{"count":1.5}}`, `parameter "count": expected integer, got number 1.5 (integers cannot have a fraction or exponent)`},
			{"unknown", `{"flow":"count","parameters":{"count":1,"bogus":true}}`, `unknown parameter "bogus"; known parameters: count, db, name, small, tags`},
			{"unknown nested", `{"flow":"count","parameters":{"count":1,"db":{"host":"h","x":1}}}`, `unknown parameter "db.x"; known parameters: db.host, db.port`},
			{"array element", `{"flow":"count","parameters":{"count":1,"tags":["a",2]}}`, `parameter "tags[1]": expected string, got number 2`},
			{"not an object", `{"flow":"count","parameters":[1]}`, `parameters: expected a JSON object with the parameters of flow count, got array`},
			{"string for an int flow", `{"flow":"single","parameters":"abc"}`, `parameters: expected integer, got string "abc"`},
			{"required missing", `{"flow":"count","parameters":{}}`, `missing required parameter "count" (integer)`},
			{"required missing, no parameters", `{"flow":"count"}`, `missing required parameter "count" (integer)`},
			{"required null", `{"flow":"count","parameters":{"count":null}}`, `missing required parameter "count" (integer)`},
			{"nested required", `{"flow":"count","parameters":{"count":1,"db":{}}}`, `missing required parameter "db.host" (string)`},
			{"NUL in flow", `{"flow":"co\u0000unt"}`, `field "flow" must not contain a NUL byte`},
			{"invalid UTF-8 in flow", "{\"flow\":\"co\xffunt\"}", `request body is not valid UTF-8 (byte 11)`},
			{"NUL in idempotency key", `{"flow":"x","idempotency_key":"k\u0000"}`, `field "idempotency_key" must not contain a NUL byte`},
			{"invalid UTF-8 in idempotency key", "{\"flow\":\"x\",\"idempotency_key\":\"k\xfe\"}", `request body is not valid UTF-8 (byte 32)`},
			{"NUL in queue", `{"flow":"x","queue":"q\u0000"}`, `field "queue" must not contain a NUL byte`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, body := b.call(t, "POST", "/api/v1/runs", tt.body)
				msg := errMsg(body)
				if status != 400 || errCode(body) != apitype.CodeBadRequest || !strings.Contains(msg, tt.want) {
					t.Fatalf("%s: %d %v; want 400 saying %q", tt.body, status, body, tt.want)
				}
			})
		}
		runs, err := b.st.RunList(context.Background(), store.RunListParams{})
		if err != nil || len(runs) != 0 {
			t.Fatalf("bad parameters recorded runs: %v %v", runs, err)
		}
		// Worker registrations are names users chose too.
		for _, body := range []string{
			`{"name":"w\u0000","queues":["q"]}`, `{"name":"w","queues":["q\u0000"]}`, `{"name":"w","queues":["q"],"tasks":["t\u0000"]}`,
			`{"name":"w","queues":["q"],"flows":[{"name":"f\u0000"}]}`, `{"name":"w","host":"h\u0000","queues":["q"]}`,
		} {
			if status, resp := b.call(t, "POST", "/api/v1/workers", body); status != 400 || !strings.Contains(errMsg(resp), "NUL") {
				t.Errorf("register %s: %d %v; want 400 about the NUL byte", body, status, resp)
			}
		}

		// Good parameters are merged over the defaults, as the CLI does.
		ok := []struct{ body, want string }{
			{`{"flow":"count","parameters":{"count":2}}`, `{"count":2,"name":"d"}`},
			{`{"flow":"count","parameters":{"COUNT":3,"db":{"host":"h"}}}`, `{"count":3,"db":{"host":"h"},"name":"d"}`},
			{`{"flow":"single"}`, `7`},
			{`{"flow":"single","parameters":8}`, `8`},
			// A flow no worker registered is accepted as given.
			{`{"flow":"unregistered","parameters":{"anything":"goes"}}`, `{"anything":"goes"}`},
		}
		for _, tt := range ok {
			status, body := b.call(t, "POST", "/api/v1/runs", tt.body)
			if status != 201 {
				t.Fatalf("%s: %d %v", tt.body, status, body)
			}
			run, err := b.st.RunGet(context.Background(), body["id"].(string))
			if err != nil || !sameJSON(t, run.Parameters, tt.want) {
				t.Fatalf("%s: recorded parameters %s %v; want %s", tt.body, run.Parameters, err, tt.want)
			}
		}
	})
}

func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// TestCreateRunSameMessagesAsCLI: for the same defect, the API's message
// is params.Build's (the command line's).
func TestCreateRunSameMessagesAsCLI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b)
	for _, p := range []string{`{"count":"abc"}`, `{"count":1,"small":-200}`, `{"count":1,"db":{"port":1}}`, `{}`, `{"count":1,"nope":1}`, `{"count":1,"tags":{}}`} {
		_, berr := params.Build(reflect.TypeFor[countParams](), json.RawMessage(`{"count":0,"name":"d"}`), p, nil)
		if berr == nil {
			t.Fatalf("Build accepts %s", p)
		}
		status, body := b.call(t, "POST", "/api/v1/runs", `{"flow":"count","parameters":`+p+`}`)
		msg := errMsg(body)
		if status != 400 || msg != berr.Error() {
			t.Errorf("%s: API %d %q; command line %q", p, status, msg, berr)
		}
	}
}

// TestIdempotencyConflict: issue 6 item 8. The same key with the same
// request returns the first run (200); with another flow, queue or
// parameters it is a 409 saying what differs.
func TestIdempotencyConflict(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		register(t, b)
		first := `{"flow":"count","parameters":{"count":1},"idempotency_key":"k"}`
		status, body := b.call(t, "POST", "/api/v1/runs", first)
		if status != 201 {
			t.Fatalf("create: %d %v", status, body)
		}
		id := body["id"]
		for _, same := range []string{first, `{"flow":"count","parameters":{"count":1,"name":"d"},"idempotency_key":"k","queue":"default"}`} {
			status, body = b.call(t, "POST", "/api/v1/runs", same)
			if status != 200 || body["id"] != id {
				t.Fatalf("same request again: %d %v; want 200 with run %v", status, body, id)
			}
		}
		tests := []struct{ name, body, want string }{
			{"other flow", `{"flow":"single","idempotency_key":"k"}`, `flow "count", not "single"`},
			{"other parameters", `{"flow":"count","parameters":{"count":2},"idempotency_key":"k"}`, `parameters {"count":1,"name":"d"}, not {"count":2}`},
			{"other queue", `{"flow":"count","parameters":{"count":1},"idempotency_key":"k","queue":"gpu"}`, `queue "default", not "gpu"`},
		}
		for _, tt := range tests {
			status, body := b.call(t, "POST", "/api/v1/runs", tt.body)
			msg := errMsg(body)
			if status != 409 || errCode(body) != apitype.CodeIdempotencyConflict || !strings.Contains(msg, tt.want) || !strings.Contains(msg, fmt.Sprint(id)) {
				t.Errorf("%s: %d %v; want 409 naming run %v and saying %q", tt.name, status, body, id, tt.want)
			}
		}
		// Unregistered flows compare the parameters as given.
		for i, want := range []int{201, 200, 409} {
			p := `{"a":1}`
			if i == 2 {
				p = `{"a":2}`
			}
			status, body := b.call(t, "POST", "/api/v1/runs", `{"flow":"other","parameters":`+p+`,"idempotency_key":"k2"}`)
			if status != want {
				t.Errorf("unregistered flow, request %d: %d %v; want %d", i, status, body, want)
			}
		}
		runs, err := b.st.RunList(context.Background(), store.RunListParams{})
		if err != nil || len(runs) != 2 {
			t.Fatalf("runs: %d %v; want 2", len(runs), err)
		}
	})
}

// TestHTTPEdges: issue 6 item 10's sweep of the HTTP surface: every error
// is the JSON error shape with the right status.
func TestHTTPEdges(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		tests := []struct {
			name, method, path, ctype, body string
			status                          int
			code, allow, want               string
		}{
			{"wrong method", "DELETE", "/api/v1/runs", "", "", 405, apitype.CodeMethod, "GET, HEAD, POST", "method DELETE is not allowed on /api/v1/runs"},
			{"wrong method on an id", "PUT", "/api/v1/runs/x", "", "", 405, apitype.CodeMethod, "GET, HEAD", ""},
			{"GET of a POST route", "GET", "/api/v1/runs/x/cancel", "", "", 405, apitype.CodeMethod, "POST", ""},
			{"unknown route", "GET", "/api/v1/nope", "", "", 404, apitype.CodeNotFound, "", "no route GET /api/v1/nope"},
			{"unknown route outside the API", "POST", "/favicon.ico", "", "", 404, apitype.CodeNotFound, "", ""},
			{"content type jsonx", "POST", "/api/v1/runs", "application/jsonx", `{"flow":"f"}`, 415, apitype.CodeUnsupportedMedia, "", `Content-Type "application/jsonx" is not accepted`},
			{"content type text", "POST", "/api/v1/runs", "text/plain", `{"flow":"f"}`, 415, apitype.CodeUnsupportedMedia, "", ""},
			{"content type other charset", "POST", "/api/v1/runs", "application/json; charset=latin1", `{"flow":"f"}`, 415, apitype.CodeUnsupportedMedia, "", ""},
			{"content type bad syntax", "POST", "/api/v1/runs", "application/json;;", `{"flow":"f"}`, 415, apitype.CodeUnsupportedMedia, "", ""},
			{"limit not a number", "GET", "/api/v1/runs?limit=abc", "", "", 400, apitype.CodeBadRequest, "", `query parameter "limit" must be an integer`},
			{"limit zero", "GET", "/api/v1/runs?limit=0", "", "", 400, apitype.CodeBadRequest, "", `"limit"`},
			{"bad state", "GET", "/api/v1/runs?state=nope", "", "", 400, apitype.CodeBadRequest, "", `query parameter "state"`},
			{"unknown query parameter", "GET", "/api/v1/runs?stat=FAILED", "", "", 400, apitype.CodeBadRequest, "", `unknown query parameter "stat"; GET /api/v1/runs takes: flow, state, queue, q, deployment, tag, created_from, created_to, limit, offset`},
			{"query parameter twice", "GET", "/api/v1/runs?limit=1&limit=2", "", "", 400, apitype.CodeBadRequest, "", `"limit" is given 2 times`},
			{"query on a route without", "GET", "/api/v1/queues?x=1", "", "", 400, apitype.CodeBadRequest, "", `takes none`},
			{"NUL in flow filter", "GET", "/api/v1/runs?flow=a%00b", "", "", 400, apitype.CodeBadRequest, "", `query parameter "flow" must not contain a NUL byte`},
			{"invalid UTF-8 in queue filter", "GET", "/api/v1/runs?queue=%ff", "", "", 400, apitype.CodeBadRequest, "", `query parameter "queue" is not valid UTF-8`},
			{"NUL in run id", "GET", "/api/v1/runs/a%00b", "", "", 400, apitype.CodeBadRequest, "", `run id must not contain a NUL byte`},
			{"invalid UTF-8 in run id", "POST", "/api/v1/runs/%ff/cancel", "", "", 400, apitype.CodeBadRequest, "", `run id is not valid UTF-8`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var body io.Reader
				if tt.body != "" {
					body = strings.NewReader(tt.body)
				}
				req, err := http.NewRequest(tt.method, b.ts.URL+tt.path, body)
				if err != nil {
					t.Fatal(err)
				}
				if tt.ctype != "" {
					req.Header.Set("Content-Type", tt.ctype)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var e apitype.ErrorResponse
				raw, _ := io.ReadAll(resp.Body)
				if err := json.Unmarshal(raw, &e); err != nil || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("%s %s: %d %s is not the JSON error shape", tt.method, tt.path, resp.StatusCode, raw)
				}
				if resp.StatusCode != tt.status || e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.want) || resp.Header.Get("Allow") != tt.allow {
					t.Fatalf("%s %s: %d %s Allow=%q; want %d %s Allow=%q saying %q", tt.method, tt.path, resp.StatusCode, raw,
						resp.Header.Get("Allow"), tt.status, tt.code, tt.allow, tt.want)
				}
			})
		}
		// Malformed URLs: Go's server refuses a bad escape in the path
		// before any handler; the API's listener turns it into the JSON
		// shape. A bad escape in the query reaches the handler.
		for _, target := range []string{"/api/v1/runs/%ZZ", "/api/v1/runs/%Z", "/%", "/api/v1/runs?flow=%ZZ"} {
			status, ct, body := rawRequest(t, b.ts.Listener.Addr().String(), "GET", target)
			var e apitype.ErrorResponse
			if status != 400 || ct != "application/json" || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != apitype.CodeBadRequest || !strings.Contains(e.Error.Message, "malformed") {
				t.Errorf("GET %s: %d %s %s; want a JSON 400", target, status, ct, body)
			}
		}
		// The next request on the connection still works.
		c, err := net.Dial("tcp", b.ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /api/v1/runs/%%ZZ HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		all, _ := io.ReadAll(c)
		c.Close()
		if n := strings.Count(string(all), "HTTP/1.1 "); n != 2 || !strings.Contains(string(all), `"status":"ok"`) {
			t.Errorf("pipelined requests after a malformed one:\n%s", all)
		}

		// charset=utf-8 is fine.
		req, _ := http.NewRequest("POST", b.ts.URL+"/api/v1/runs", strings.NewReader(`{"flow":"f"}`))
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("application/json; charset=UTF-8: %d", resp.StatusCode)
		}
	})
}

// rawRequest sends a request line as is (a client would refuse to send a
// malformed URL) and returns the status, the Content-Type and the body.
func rawRequest(t *testing.T, addr, method, target string) (int, string, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method, target)
	raw, _ := io.ReadAll(c)
	head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
	var status int
	fmt.Sscanf(head, "HTTP/1.1 %d", &status)
	ct := ""
	for _, l := range strings.Split(head, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Content-Type: "); ok {
			ct = v
		}
	}
	return status, ct, body
}

// errMsg is the message of an error response ("" for none).
func errMsg(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}
