package engine

import (
	"fmt"
	"slices"
	"testing"
)

// TestFlowGraphFrontier: a call depends on the latest received results;
// receiving a result drops the received ones it depends on, and a result
// that a received one depends on adds nothing.
func TestFlowGraphFrontier(t *testing.T) {
	t.Parallel()
	type op struct {
		call     string   // make a call of this node (its deps are checked)
		after    []string // its WaitFor nodes
		want     []string
		received string // or receive this node's result
	}
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"chain", []op{
			{call: "a"}, {received: "a"},
			{call: "b", want: []string{"a"}}, {received: "b"},
			{call: "c", want: []string{"b"}}, // not a: b stands for it
		}},
		{"fan-in", []op{
			{call: "a"}, {call: "b"}, {received: "b"}, {received: "a"},
			{call: "c", want: []string{"a", "b"}},
		}},
		{"diamond", []op{
			{call: "a"}, {received: "a"},
			{call: "b", want: []string{"a"}}, {call: "c", want: []string{"a"}},
			{received: "c"}, {received: "b"},
			{call: "d", want: []string{"b", "c"}},
		}},
		{"late receipt of an ancestor", []op{
			{call: "a"}, {received: "a"},
			{call: "b", want: []string{"a"}}, {received: "b"},
			{received: "a"}, // again, or through another future of the map
			{call: "c", want: []string{"b"}},
		}},
		{"wait for", []op{
			{call: "a"}, {call: "b", after: []string{"a"}, want: []string{"a"}},
			{received: "b"}, {call: "c", want: []string{"b"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var g flowGraph
			for i, o := range tc.ops {
				if o.received != "" {
					g.received(o.received)
					continue
				}
				var after []*Future
				for _, a := range o.after {
					after = append(after, &Future{node: a})
				}
				deps := g.depsFor(after)
				g.record(o.call, deps)
				if !slices.Equal(deps, o.want) {
					t.Errorf("op %d: call %s depends on %v, want %v", i, o.call, deps, o.want)
				}
			}
		})
	}
}

// TestFlowGraphBounded: a call records at most graphDepsMax received
// nodes, the latest ones.
func TestFlowGraphBounded(t *testing.T) {
	t.Parallel()
	var g flowGraph
	for i := range graphDepsMax + 10 {
		n := fmt.Sprintf("n%03d", i)
		g.record(n, nil)
		g.received(n)
	}
	deps := g.depsFor(nil)
	if len(deps) != graphDepsMax || deps[0] != "n010" {
		t.Fatalf("%d deps from %s, want %d from n010", len(deps), deps[0], graphDepsMax)
	}
}

// BenchmarkFlowGraphChain is what a sequential flow pays per step.
func BenchmarkFlowGraphChain(b *testing.B) {
	var g flowGraph
	for i := 0; b.Loop(); i++ {
		n := "step/" + fmt.Sprint(i)
		g.record(n, g.depsFor(nil))
		g.received(n)
	}
}
