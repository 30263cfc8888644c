package flows_test

import (
	"slices"
	"testing"

	"github.com/batonhq/baton/examples/flows"
	"github.com/batonhq/baton/internal/cli/progcmd"
)

// TestAll checks that the bundled flows can be hosted together: their flow
// names are the ones the commands use, and no two tasks share a name (a
// second task with a name would silently replace the first).
func TestAll(t *testing.T) {
	p := progcmd.ProgramOf("", flows.All()...)
	defs, tasks := p.Flows, p.Tasks
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
	}
	if want := []string{"etl", "sweep", "knn", "campaign"}; !slices.Equal(names, want) {
		t.Errorf("flows %q, want %q", names, want)
	}

	seen := map[string]bool{}
	for _, td := range tasks {
		if seen[td.Name] {
			t.Errorf("two tasks named %q", td.Name)
		}
		seen[td.Name] = true
	}
	for _, name := range []string{"extract", "transform", "load", "generate-image", "filter", "report", "generate", "evaluate", "ask", "experiment", "decide"} {
		if !seen[name] {
			t.Errorf("task %q not registered", name)
		}
	}
}
