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
	got := map[string]string{}
	figures := stdout.String()
	sc := bufio.NewScanner(strings.NewReader(figures))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			t.Errorf("line %q is not name=value", sc.Text())
			continue
		}
		got[k] = v
	}
	for _, k := range localKeys {
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
	if len(got) != len(localKeys) {
		t.Errorf("printed %d figures, want %d:\n%s", len(got), len(localKeys), figures)
	}
	t.Logf("figures (in %s):\n%s", time.Since(start).Round(time.Millisecond), figures)
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"local", "-scale", "0"}, {"local", "-bogus"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "usage:") {
			t.Errorf("run(%q) printed no usage: %q", args, errb.String())
		}
	}
}
