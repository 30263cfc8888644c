package sqlcore

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/batonhq/baton/internal/store"
)

func TestArgs(t *testing.T) {
	t.Parallel()
	var a Args
	if p := a.Add("x"); p != "$1" {
		t.Errorf("first parameter %s, want $1", p)
	}
	if p := a.Add(int64(2)); p != "$2" {
		t.Errorf("second parameter %s, want $2", p)
	}
	if !reflect.DeepEqual([]any(a), []any{"x", int64(2)}) {
		t.Errorf("args %v", a)
	}
}

func TestTaskRunListQuery(t *testing.T) {
	t.Parallel()
	sel := "SELECT " + TaskRunCols + " FROM task_runs WHERE run_id = $1 AND created_at >= 0"
	for _, c := range []struct {
		name string
		p    store.TaskRunListParams
		sql  string
		args []any
	}{
		{"run", store.TaskRunListParams{RunID: "r"}, sel + " ORDER BY created_at, id", []any{"r"}},
		{"key and states", store.TaskRunListParams{RunID: "r", Key: "k", States: []store.TaskState{"A", "B"}},
			sel + " AND key = $2 AND state IN ($3, $4) ORDER BY created_at, id", []any{"r", "k", "A", "B"}},
		{"known states as literals", store.TaskRunListParams{RunID: "r", States: []store.TaskState{store.TaskFailed, "X", store.TaskCrashed}, Limit: 10},
			sel + " AND state IN ('FAILED', $2, 'CRASHED') ORDER BY created_at, id LIMIT $3 OFFSET $4", []any{"r", "X", int64(10), int64(0)}},
		{"slowest page", store.TaskRunListParams{RunID: "r", Slowest: true, Limit: 5, Offset: 10},
			sel + " AND started_at <> 0 AND ended_at <> 0 ORDER BY ended_at - started_at DESC, created_at, id LIMIT $2 OFFSET $3",
			[]any{"r", int64(5), int64(10)}},
		{"offset only", store.TaskRunListParams{RunID: "r", Offset: 3},
			sel + " ORDER BY created_at, id LIMIT $2 OFFSET $3", []any{"r", int64(1<<63 - 1), int64(3)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			q, args := taskRunListQuery(c.p)
			if q != c.sql || !reflect.DeepEqual(args, c.args) {
				t.Errorf("got\n%s %v\nwant\n%s %v", q, args, c.sql, c.args)
			}
		})
	}
}

func TestJSONCodec(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		in   json.RawMessage
		enc  any
	}{
		{"nil", nil, nil},
		{"empty", json.RawMessage{}, ""},
		{"plain", json.RawMessage(`{"a":1}`), `{"a":1}`},
		{"NUL", json.RawMessage("\"a\x00b\""), "\"a\x1000b\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			enc := EncJSON(c.in)
			if enc != c.enc {
				t.Fatalf("EncJSON = %#v, want %#v", enc, c.enc)
			}
			var stored []byte
			if s, ok := enc.(string); ok {
				stored = []byte(s)
			}
			got := DecJSON(stored)
			if (got == nil) != (c.in == nil) || string(got) != string(c.in) {
				t.Errorf("DecJSON(EncJSON(%q)) = %q", c.in, got)
			}
		})
	}
	if EncResult(json.RawMessage(`1`), "sha256:x") != nil {
		t.Errorf("EncResult beside a ref is not NULL")
	}
}

func TestTimeCodec(t *testing.T) {
	t.Parallel()
	if EncTime(time.Time{}) != 0 || !DecTime(0).IsZero() {
		t.Errorf("the zero time is not stored as 0")
	}
	at := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("x", 3600))
	if got := DecTime(EncTime(at)); !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("round trip of %v = %v", at, got)
	}
	if got := RoundRun(store.Run{CreatedAt: at}).CreatedAt; got != DecTime(EncTime(at)) {
		t.Errorf("RoundRun CreatedAt = %v", got)
	}
}

func TestErrorAndHistoryCodec(t *testing.T) {
	t.Parallel()
	if v, err := EncError(nil); v != nil || err != nil {
		t.Errorf("EncError(nil) = %v, %v", v, err)
	}
	e := &store.ErrorInfo{Message: "bad\x00byte", Kind: "permanent", Chain: []string{"x\xff"}}
	v, err := EncError(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecError([]byte(v.(string)))
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Errorf("error round trip: %+v, %v", got, err)
	}
	for _, empty := range [][]store.Transition{nil, {}} {
		if b, err := MarshalHistory(empty); b != nil || err != nil {
			t.Errorf("MarshalHistory(%v) = %q, %v", empty, b, err)
		}
	}
	h := []store.Transition{{At: time.Unix(1, 2).UTC(), From: "PENDING", To: "RUNNING", Message: "m\x00"}}
	b, err := MarshalHistory(h)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecHistory(b)
	if err != nil || !reflect.DeepEqual(back, h) {
		t.Errorf("history round trip: %+v, %v", back, err)
	}
	for _, raw := range []string{"", "[]"} {
		if h, err := DecHistory([]byte(raw)); h != nil || err != nil {
			t.Errorf("DecHistory(%q) = %v, %v", raw, h, err)
		}
	}
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		files []string
		want  []int
		err   string
	}{
		{"sorted", []string{"0002_b.sql", "0001_a.sql"}, []int{1, 2}, ""},
		{"none", nil, nil, ""},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, nil, "expected version 2"},
		{"bad name", []string{"first.sql"}, nil, "bad migration file name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{}
			for _, f := range c.files {
				fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("-- " + f)}
			}
			ms, err := Migrations(fsys)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("versions %v, want %v", got, c.want)
			}
		})
	}
}

func TestNotes(t *testing.T) {
	t.Parallel()
	var ns Notes
	ns.AddRun(&store.Run{ID: "a", State: store.RunScheduled, Queue: "q"})
	ns.AddRun(&store.Run{ID: "b", State: store.RunScheduled, Queue: "q"}) // the same wake-up
	ns.AddRun(&store.Run{ID: "c", State: store.RunScheduled})             // local: no queue
	ns.AddRun(&store.Run{ID: "d", State: store.RunCancelling})
	ns.Add("done", "r")
	want := []store.Notification{{Kind: "runs", Payload: "q"}, {Kind: "cancel", Payload: "d"}, {Kind: "done", Payload: "r"}}
	if !reflect.DeepEqual(ns.List, want) {
		t.Errorf("notes %v, want %v", ns.List, want)
	}
}

func TestBroadcaster(t *testing.T) {
	t.Parallel()
	var b Broadcaster
	ctx, cancel := context.WithCancel(context.Background())
	gone, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stays, err := b.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := store.Notification{Kind: "runs", Payload: "q"}
	b.Publish([]store.Notification{n})
	if got := <-gone; got != n {
		t.Errorf("got %v", got)
	}
	cancel()
	if _, open := <-gone; open {
		t.Errorf("a subscriber's channel stays open after its context ended")
	}
	for range SubscriberBuffer + 10 { // never blocks: the overflow is dropped
		b.Publish([]store.Notification{n})
	}
	if len(stays) != SubscriberBuffer {
		t.Errorf("%d buffered, want %d", len(stays), SubscriberBuffer)
	}
	b.Close()
	b.Close()
	drained := 0
	for range stays {
		drained++
	}
	if drained != SubscriberBuffer {
		t.Errorf("drained %d after Close, want %d", drained, SubscriberBuffer)
	}
	if _, err := b.Subscribe(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
}

// TestTaskRunBriefCols: the brief read has TaskRunCols' columns, the large
// ones as NULL, so it scans into the same destinations.
func TestTaskRunBriefCols(t *testing.T) {
	t.Parallel()
	full, brief := strings.Split(TaskRunCols, ","), strings.Split(taskRunBriefCols, ",")
	if len(full) != len(brief) {
		t.Fatalf("%d columns, brief %d", len(full), len(brief))
	}
	nulls := 0
	for i := range full {
		f, b := strings.TrimSpace(full[i]), strings.TrimSpace(brief[i])
		switch {
		case b == "NULL" && (f == "input" || f == "result" || f == "history"):
			nulls++
		case f != b:
			t.Errorf("column %d: %q, brief %q", i, f, b)
		}
	}
	if nulls != 3 {
		t.Errorf("%d columns left out, want 3 (input, result, history)", nulls)
	}
}
