// Package deptest checks that the import graph keeps the architecture's
// layering: the engine knows only the store interface, and nothing below
// the command line imports it.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/batonhq/baton"

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestLayering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{mod + "/internal/engine", []string{mod + "/internal/store/sqlite", mod + "/internal/cli", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/spf13/cobra", "net/http"}},
		{mod + "/internal/store", []string{mod + "/internal/engine", "modernc.org/sqlite"}},
		{mod + "/internal/store/sqlite", []string{mod + "/internal/engine", mod + "/internal/cli"}},
		{mod + "/internal/params", []string{mod + "/internal/engine", mod + "/internal/store"}},
		{mod, []string{mod + "/internal/server", mod + "/internal/ui"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			t.Parallel()
			for _, d := range deps(t, tt.pkg) {
				for _, f := range tt.forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s imports %s", tt.pkg, d)
					}
				}
			}
		})
	}
}
