package engine

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// memBlobs is a blob store in memory that counts its Gets.
type memBlobs struct {
	mu   sync.Mutex
	m    map[string][]byte
	gets int
}

func (b *memBlobs) Put(data []byte) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ref := "mem:" + Hash(data)
	b.m[ref] = append([]byte(nil), data...)
	return ref, nil
}

func (b *memBlobs) Get(ref string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gets++
	d, ok := b.m[ref]
	if !ok {
		return nil, io.ErrUnexpectedEOF
	}
	return d, nil
}

// TestStoreInput: small inputs stay inline; large ones are recorded as an
// inline piece and a blob of their large parts that LoadInput joins back.
func TestStoreInput(t *testing.T) {
	t.Parallel()
	data := `[` + strings.Repeat(`{"x":1.25,"y":-3},`, 600) + `{"x":0,"y":0}]`
	tests := []struct {
		name       string
		input      string
		wantRef    bool
		wantInline string
	}{
		{"small", `{"k":3,"data":[1,2,3]}`, false, `{"k":3,"data":[1,2,3]}`},
		{"at the threshold", `"` + strings.Repeat("s", InputBlobThreshold-2) + `"`, false, ""},
		{"dataset beside a k", `{"k":3,"data":` + data + `}`, true, `{"parts_at":[2],"value":{"k":3,"data":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			blobs := &memBlobs{m: map[string][]byte{}}
			e, err := New(Config{Store: &refusingStore{}, Blobs: blobs, LogOutput: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			inline, ref := e.storeInput(json.RawMessage(tt.input))
			if (ref != "") != tt.wantRef || (tt.wantInline != "" && string(inline) != tt.wantInline) {
				t.Fatalf("storeInput = %.80s, %q; want inline %.80s, a ref: %v", inline, ref, tt.wantInline, tt.wantRef)
			}
			if !tt.wantRef && string(inline) != tt.input {
				t.Fatalf("an inline input was changed: %.80s", inline)
			}
			got, err := e.LoadInput(inline, ref)
			if err != nil || string(got) != tt.input {
				t.Errorf("LoadInput = %.80s, %v; want the input", got, err)
			}
		})
	}
}

// TestRunTaskInput: a claimed task run whose input has a blob runs on the
// whole input, the blob is read once for all the task runs that share it,
// and a task run whose blob cannot be read fails saying so.
func TestRunTaskInput(t *testing.T) {
	t.Parallel()
	blobs := &memBlobs{m: map[string][]byte{}}
	e, err := New(Config{Store: &refusingStore{}, Blobs: blobs, LogOutput: io.Discard, Worker: "w1", Distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	data := `[` + strings.Repeat(`1234567,`, 2000) + `0]`
	var mu sync.Mutex
	var seen []string
	td := &TaskDef{Name: "count", Invoke: func(_ context.Context, in json.RawMessage) (any, error) {
		mu.Lock()
		seen = append(seen, string(in))
		mu.Unlock()
		return len(in), nil
	}}
	var wg sync.WaitGroup
	for k := range 7 {
		input := `{"k":` + string(rune('0'+k)) + `,"data":` + data + `}`
		inline, ref := e.storeInput(json.RawMessage(input))
		if ref == "" {
			t.Fatal("input not split")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.RunTask(context.Background(), td, store.TaskRun{ID: "t", RunID: "r", Key: "count/0." + string(rune('0'+k)),
				Task: "count", State: store.TaskRunning, Input: inline, InputRef: ref})
			if c.State != store.TaskCompleted || string(c.Result) != jsonLen(input) {
				t.Errorf("item %d: %s %s %+v; want COMPLETED with the length of the whole input", k, c.State, c.Result, c.Error)
			}
		}()
	}
	wg.Wait()
	if blobs.gets != 1 {
		t.Errorf("7 task runs sharing an input blob read it %d times, want 1", blobs.gets)
	}
	c := e.RunTask(context.Background(), td, store.TaskRun{ID: "t", RunID: "r", Key: "count/1", Task: "count",
		State: store.TaskRunning, Input: json.RawMessage(`{"parts_at":[0],"value":null}`), InputRef: "mem:missing"})
	if c.State != store.TaskFailed || c.Error == nil || !strings.Contains(c.Error.Message, "mem:missing") || len(seen) != 7 {
		t.Errorf("task run with a missing input blob: %s %+v (the task ran %d times); want FAILED naming the blob, not run",
			c.State, c.Error, len(seen))
	}
}

func jsonLen(s string) string { b, _ := json.Marshal(len(s)); return string(b) }
