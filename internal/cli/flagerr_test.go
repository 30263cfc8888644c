package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestFlagErrorsSayWhatIsExpected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"list", "--limit", "abc"}, `invalid argument "abc" for "--limit" flag: must be an integer; see: baton list --help`},
		{[]string{"list", "--limit", "99999999999999999999"}, `flag: out of range; see`},
	}
	for _, tt := range tests {
		root := &cobra.Command{Use: "baton", SilenceUsage: true, SilenceErrors: true}
		list := &cobra.Command{Use: "list", RunE: func(*cobra.Command, []string) error { return nil }}
		list.Flags().Int("limit", 50, "")
		root.AddCommand(list)
		var errb bytes.Buffer
		code := Execute(context.Background(), root, tt.args, &Env{Stderr: &errb, Getenv: func(string) string { return "" }})
		if errOut := errb.String(); code != ExitUsage || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "strconv") {
			t.Errorf("%v: exit %d: %s; want %q", tt.args, code, errOut, tt.want)
		}
	}
}

// TestHintNamesTheCommandAsRun: Execute fills in how the program is run;
// a hint about the baton tool names baton in a user's program.
func TestHintNamesTheCommandAsRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		root, command string
		hint          *Hint
		want          string
	}{
		{"prog", "go run .", &Hint{Format: "list runs with: %s runs list"}, "prog: list runs with: go run . runs list"},
		{"prog", "go run .", &Hint{Format: "start one with: %s dev", Tool: true}, "prog: start one with: baton dev"},
		{"baton", "go run ./cmd/baton", &Hint{Format: "start one with: %s dev", Tool: true}, "baton: start one with: go run ./cmd/baton dev"},
		{"baton", "", &Hint{Format: "see %s runs show %s", Args: []any{HintCommand, "r1"}}, "baton: see baton runs show r1"},
	}
	for _, tt := range tests {
		root := &cobra.Command{Use: tt.root, SilenceUsage: true, SilenceErrors: true,
			RunE: func(*cobra.Command, []string) error { return &UsageError{Err: tt.hint} }}
		var errb bytes.Buffer
		code := Execute(context.Background(), root, nil, &Env{Stderr: &errb, Command: tt.command})
		if got := strings.TrimSpace(errb.String()); code != ExitUsage || got != tt.want {
			t.Errorf("%s with Command %q: exit %d, %q; want %q", tt.root, tt.command, code, got, tt.want)
		}
	}
}
