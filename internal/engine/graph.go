package engine

import (
	"cmp"
	"slices"
	"sync"
)

// The run graph (docs/architecture.md, "The run graph"): each step records
// the graph nodes it depends on (store.TaskRun.Deps), and each map item
// the map it belongs to (store.TaskRun.Map), so that the server draws a
// map of 100,000 items as one node.
//
// A step depends on the steps it waits for (Call.After: baton.WaitFor) and
// on those whose results the flow code had received when it made the call:
// a value the flow got from a step may be in the call's input, so
// b.Run(ctx, a.Run(ctx, x)) draws a → b. The engine cannot see into the
// values, so it records the conservative edge: a call depends on every
// result received before it, reduced to the latest ones (a result received
// after another that it depends on stands for both). Results are counted
// per flow attempt, whichever goroutine of the flow took them: the flow's
// goroutines share one frontier. A map's items are one node: receiving any
// item's result is receiving from the map.

// graphDepsMax bounds the nodes one step depends on: the latest received
// results. A flow that gathers more independent results than this before
// one call draws edges only from the latest of them.
const graphDepsMax = 64

// graphSearchMax bounds the nodes visited when receiving a result prunes
// the frontier of the results it depends on.
const graphSearchMax = 256

// flowGraph is what one attempt of a flow run knows of its graph. Safe for
// concurrent use; the zero value is ready. A node can depend only on
// nodes made before it, so the order nodes were made in bounds every
// search: receiving the result of a chain's next step costs O(1).
type flowGraph struct {
	mu   sync.Mutex
	seq  uint64
	made uint64
	// front holds the received nodes that no other received node is known
	// to depend on, each with the order it was received in.
	front map[string]uint64
	// nodes holds each node of the attempt: its dependencies and the order
	// it was made in.
	nodes map[string]graphNode
}

type graphNode struct {
	deps []string
	made uint64
}

// depsFor returns the nodes a call made now depends on: the frontier and
// the nodes of after, sorted, at most graphDepsMax of the frontier.
func (g *flowGraph) depsFor(after []*Future) []string {
	g.mu.Lock()
	out := make([]string, 0, min(len(g.front), graphDepsMax)+len(after))
	if len(g.front) <= graphDepsMax {
		for n := range g.front {
			out = append(out, n)
		}
	} else {
		type rec struct {
			node string
			seq  uint64
		}
		fr := make([]rec, 0, len(g.front))
		for n, s := range g.front {
			fr = append(fr, rec{n, s})
		}
		slices.SortFunc(fr, func(a, b rec) int { return cmp.Compare(b.seq, a.seq) })
		for _, r := range fr[:graphDepsMax] {
			out = append(out, r.node)
		}
	}
	g.mu.Unlock()
	for _, f := range after {
		if f != nil && f.node != "" {
			out = append(out, f.node)
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// record notes the dependencies of node (its first record wins: the items
// of a map share theirs).
func (g *flowGraph) record(node string, deps []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nodes == nil {
		g.nodes = map[string]graphNode{}
	}
	if _, ok := g.nodes[node]; !ok {
		g.made++
		g.nodes[node] = graphNode{deps: deps, made: g.made}
	}
}

// received notes that the flow code received the result of node.
func (g *flowGraph) received(node string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.front[node]; ok {
		return
	}
	if g.front == nil {
		g.front = map[string]uint64{}
	}
	made := g.nodes[node].made
	// A node that a received one depends on adds nothing to the frontier;
	// the received ones that node depends on (made before it) leave it.
	var older []uint64
	for f := range g.front {
		fm := g.nodes[f].made
		if fm > made && g.reaches(f, node, made) {
			return
		}
		if fm < made {
			older = append(older, fm)
		}
	}
	left := len(older)
	for _, d := range g.nodes[node].deps { // the usual case: the direct dependencies
		if _, ok := g.front[d]; ok && left > 0 {
			delete(g.front, d)
			left--
		}
	}
	if left > 0 {
		oldest := slices.Min(older)
		seen := map[string]bool{}
		stack := slices.Clone(g.nodes[node].deps)
		for len(stack) > 0 && len(seen) < graphSearchMax && left > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[n] {
				continue
			}
			seen[n] = true
			if _, ok := g.front[n]; ok {
				delete(g.front, n)
				left--
			}
			if x := g.nodes[n]; x.made > oldest { // older nodes have only older ancestors
				stack = append(stack, x.deps...)
			}
		}
	}
	g.seq++
	g.front[node] = g.seq
}

// reaches reports whether from depends on to (made at made), directly or
// not, within graphSearchMax nodes. g.mu is held.
func (g *flowGraph) reaches(from, to string, made uint64) bool {
	seen := map[string]bool{}
	stack := slices.Clone(g.nodes[from].deps)
	for len(stack) > 0 && len(seen) < graphSearchMax {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == to {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		if x := g.nodes[n]; x.made > made { // to can be an ancestor only of nodes made after it
			stack = append(stack, x.deps...)
		}
	}
	return false
}

// mapItem is what a map's item carries into submitMode: the map's key and
// the dependencies of the map.
type mapItem struct {
	key  string
	deps []string
}

// stepFuture returns the future of a step of this attempt at key, which
// is the graph node node (the step's key, or its map's).
func (fc *FlowCtx) stepFuture(key, node string) *Future {
	f := fc.newFuture(key)
	f.node, f.recv = node, fc.graph.received
	return f
}

// fromJournal returns the future of a step answered from the journal.
func (fc *FlowCtx) fromJournal(key, node string, v any, err error) *Future {
	f := fc.stepFuture(key, node)
	f.resolve(v, err)
	return f
}
