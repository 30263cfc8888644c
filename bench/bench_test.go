package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the 1M child process, which the local
// suite starts by re-executing its own binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childMap1M {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestLocalSmoke(t *testing.T) {
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := runLocal(context.Background(), localConfig{scale: 0.001, dir: t.TempDir()}, &stdout, &stderr)
	t.Logf("progress:\n%s", stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr.String(), "WARNING") {
		t.Error("the suite printed a warning")
	}
	figures := stdout.String()
	checkFigures(t, localKeys, figures)
	t.Logf("figures (in %s):\n%s", time.Since(start).Round(time.Millisecond), figures)
}

// TestDistributedSmoke runs the distributed suite at a tiny scale on the
// database of BATON_TEST_POSTGRES (scripts/with-postgres.sh sets it).
func TestDistributedSmoke(t *testing.T) {
	if os.Getenv(envPostgres) == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set on CI: run the tests under scripts/with-postgres.sh", envPostgres)
		}
		t.Skipf("%s is not set: run under scripts/with-postgres.sh", envPostgres)
	}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	cfg := distConfig{scale: 0.002, workers: 4, concurrency: 64, dir: t.TempDir()}
	err := runDistributed(context.Background(), cfg, nil, &stdout, &stderr)
	t.Logf("progress:\n%s", stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, distKeys, stdout.String())
	t.Logf("figures (in %s):\n%s", time.Since(start).Round(time.Millisecond), stdout.String())
}

// checkFigures checks that stdout holds exactly keys, as name=value lines,
// with a go version for go_version and positive numbers for the others.
func checkFigures(t *testing.T, keys []string, figures string) {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(figures))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			t.Errorf("line %q is not name=value", sc.Text())
			continue
		}
		got[k] = v
	}
	for _, k := range keys {
		v, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s not printed", k)
		case k == "go_version":
			if !strings.HasPrefix(v, "go") {
				t.Errorf("go_version=%q", v)
			}
		default:
			if f, err := strconv.ParseFloat(v, 64); err != nil || f <= 0 {
				t.Errorf("%s=%q, want a positive number", k, v)
			}
		}
	}
	if len(got) != len(keys) {
		t.Errorf("printed %d figures, want %d:\n%s", len(got), len(keys), figures)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"local", "-scale", "0"}, {"local", "-bogus"},
		{"distributed", "-workers", "0"}, {"distributed", "-scale", "-1"}, {"distributed", "-bogus"},
		{"distributed", "-only", "nope"}, {"distributed", "extra"},
		{"ui-run", "-loads", "0"}, {"ui-run", "-scale", "0"}, {"ui-run", "-bogus"}, {"ui-run", "extra"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "usage:") {
			t.Errorf("run(%q) printed no usage: %q", args, errb.String())
		}
	}
}

// TestUIRunSmoke runs the ui-run measure at a tiny scale in headless
// Chromium (scripts/with-chromium.sh sets BATON_CHROMIUM); it skips when
// no Chromium can be found, unless BATON_REQUIRE_BROWSER is set.
func TestUIRunSmoke(t *testing.T) {
	cfg := uiRunConfig{scale: 0.001, loads: 1, dir: t.TempDir()}
	if findChromium(cfg) == "" {
		if os.Getenv("BATON_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium found (BATON_REQUIRE_BROWSER is set): run under scripts/with-chromium.sh")
		}
		t.Skip("no Chromium found: run under scripts/with-chromium.sh")
	}
	var stdout, stderr bytes.Buffer
	err := runUIRun(context.Background(), cfg, &stdout, &stderr)
	t.Logf("progress:\n%s", stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, uiRunKeys, stdout.String())
	if !strings.Contains(stdout.String(), "ui_run_task_runs=102\n") {
		t.Errorf("figures:\n%s\nwant ui_run_task_runs=102 (a map of 100 items and two steps)", stdout.String())
	}
}
