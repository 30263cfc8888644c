package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

type mapLoader map[string]string

func (m mapLoader) Get(ref string) ([]byte, error) {
	if v, ok := m[ref]; ok {
		return []byte(v), nil
	}
	return nil, errors.New("missing " + ref)
}

// TestViewsResolveRefs: a result in the blob store is shown from the blob,
// also when a record holds an inline null beside the ref (written by
// workers before stores dropped it).
func TestViewsResolveRefs(t *testing.T) {
	t.Parallel()
	load := mapLoader{"sha256:a": `"big"`}
	tests := []struct {
		name   string
		inline json.RawMessage
		ref    string
		want   string
		err    bool
	}{
		{"inline", json.RawMessage(`1`), "", `1`, false},
		{"ref", nil, "sha256:a", `"big"`, false},
		{"inline null beside the ref", json.RawMessage(`null`), "sha256:a", `"big"`, false},
		{"missing blob", nil, "sha256:b", ``, true},
	}
	for _, tc := range tests {
		rv, err := RunViewOf(store.Run{ID: "r", Result: tc.inline, ResultRef: tc.ref}, load)
		if string(rv.Result) != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: run result %s, %v; want %s", tc.name, rv.Result, err, tc.want)
		}
		tv, err := TaskRunViewOf(store.TaskRun{ID: "t", Result: tc.inline, ResultRef: tc.ref}, load)
		if string(tv.Result) != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: task run result %s, %v; want %s", tc.name, tv.Result, err, tc.want)
		}
	}
}
