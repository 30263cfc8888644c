package cli

import (
	"strings"
	"testing"
)

func TestFlagErrorsSayWhatIsExpected(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"runs", "list", "--limit", "abc"}, `invalid argument "abc" for "--limit" flag: must be an integer; see: baton runs list --help`},
		{[]string{"runs", "list", "--limit", "99999999999999999999"}, `flag: out of range; see`},
	}
	for _, tt := range tests {
		code, _, errOut := runsTestRun(t, append([]string{"--db", db}, tt.args...)...)
		if code != ExitUsage || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "strconv") {
			t.Errorf("%v: exit %d: %s; want %q", tt.args, code, errOut, tt.want)
		}
	}
}
