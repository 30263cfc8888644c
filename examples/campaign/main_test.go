package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/batonhq/baton/examples/flows/campaign/bo"
)

// TestAuto runs `campaign --auto` as a newcomer would, with a fast
// instrument: its last line is best=<value>, within 1% of Branin's minimum,
// reached within the stated bound of 48 evaluations.
func TestAuto(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	var stdout, stderr bytes.Buffer
	code := auto(context.Background(), []string{"--db", db, "--instrument-delay", "1ms", "--quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	v, ok := strings.CutPrefix(last, "best=")
	if !ok {
		t.Fatalf("last line %q, want best=<value>; stdout:\n%s", last, stdout.String())
	}
	best, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("last line %q: %v", last, err)
	}
	if gap := (best - bo.BraninMin) / bo.BraninMin; gap > 0.01 || gap < -1e-5 {
		t.Errorf("best=%v is %.2f%% from %v, want within 1%%", best, 100*gap, bo.BraninMin)
	}
	m := regexp.MustCompile(`(?m)^run \S+: 12 iterations, (\d+) evaluations, (\d+) failed`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no summary line in:\n%s", stdout.String())
	}
	evals, _ := strconv.Atoi(m[1])
	failed, _ := strconv.Atoi(m[2])
	if evals > 48 || evals+failed != 48 {
		t.Errorf("%d evaluations and %d failed, want at most 48 evaluations of 48 experiments", evals, failed)
	}
	if !strings.Contains(stdout.String(), "decision after iteration 4 (auto): continue\n") {
		t.Errorf("no decision line in:\n%s", stdout.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr with --quiet:\n%s", stderr.String())
	}
}

// TestAutoRefuses checks that bad flags and parameters exit 2, naming the
// problem, before anything is recorded.
func TestAutoRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch-size", "0"}, "batch_size is 0"},
		{[]string{"--failure-rate", "1.5"}, "failure_rate is 1.5"},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		db := filepath.Join(t.TempDir(), "baton.db")
		var stdout, stderr bytes.Buffer
		code := auto(context.Background(), append([]string{"--db", db}, tt.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
		if _, err := os.Stat(db); !os.IsNotExist(err) {
			t.Errorf("%v: the store was created (%v)", tt.args, err)
		}
	}
}
