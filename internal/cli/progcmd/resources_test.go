package progcmd

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
)

func TestWorkerResources(t *testing.T) {
	t.Parallel()
	detected := store.Resources{CPUMilli: 8000, Memory: 16 << 30, GPU: 0}
	detect := func() store.Resources { return detected }
	tests := []struct {
		cpu, memory, gpu string
		want             store.Resources
		err              string
	}{
		{"", "", "", detected, ""},
		{"16", "64GiB", "2", store.Resources{CPUMilli: 16000, Memory: 64 << 30, GPU: 2}, ""},
		{"0.5", "", "1", store.Resources{CPUMilli: 500, Memory: 16 << 30, GPU: 1}, ""},
		{"500m", "4 GB", "", store.Resources{CPUMilli: 500, Memory: 4e9}, ""},
		{"", "4 G", "", store.Resources{}, `invalid --memory "4 G": "4 G": unknown unit`},
		{"", "-1GiB", "", store.Resources{}, `invalid --memory "-1GiB": must not be negative`},
		{"-2", "", "", store.Resources{}, `invalid --cpu "-2": must not be negative`},
		{"lots", "", "", store.Resources{}, `invalid --cpu "lots"`},
		{"", "", "-1", store.Resources{}, `invalid --gpu "-1"`},
		{"", "", "1.5", store.Resources{}, `invalid --gpu "1.5"`},
	}
	for _, tc := range tests {
		got, err := workerResources(tc.cpu, tc.memory, tc.gpu, detect)
		if tc.err != "" {
			var ue *cli.UsageError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &ue) {
				t.Errorf("workerResources(%q, %q, %q) = %v, %v; want a usage error with %q", tc.cpu, tc.memory, tc.gpu, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("workerResources(%q, %q, %q) = %v, %v; want %v", tc.cpu, tc.memory, tc.gpu, got, err, tc.want)
		}
	}
}

func TestDetectionParsers(t *testing.T) {
	t.Parallel()
	if got := memTotal([]byte("MemFree:  10 kB\nMemTotal:       16303412 kB\n")); got != 16303412*1024 {
		t.Errorf("memTotal = %d", got)
	}
	if got := memTotal([]byte("garbage")); got != 0 {
		t.Errorf("memTotal of garbage = %d", got)
	}
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{{"max 100000", 0, false}, {"150000 100000", 1500, true}, {"1 3", 334, true}, {"", 0, false}, {"x y", 0, false}} {
		if got, ok := cgroupCPUQuota([]byte(tc.in)); got != tc.want || ok != tc.ok {
			t.Errorf("cgroupCPUQuota(%q) = %d, %v", tc.in, got, ok)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{{"max\n", 0, false}, {"4294967296\n", 4 << 30, true}, {"", 0, false}} {
		if got, ok := cgroupMemoryMax([]byte(tc.in)); got != tc.want || ok != tc.ok {
			t.Errorf("cgroupMemoryMax(%q) = %d, %v", tc.in, got, ok)
		}
	}
	if r := detectResources(); r.CPUMilli <= 0 || r.GPU < 0 || r.Memory < 0 {
		t.Errorf("detectResources = %v", r)
	}
}

// TestWorkerRefusesBadResources: the worker command refuses resources it
// cannot read with exit 2, naming the flag, before it contacts a server.
func TestWorkerRefusesBadResources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ flag, value, want string }{
		{"--memory", "4 G", `invalid --memory "4 G": "4 G": unknown unit: use B, KiB, MiB, GiB, TiB`},
		{"--memory", "-1GiB", `invalid --memory "-1GiB": must not be negative`},
		{"--cpu", "-1", `invalid --cpu "-1": must not be negative`},
		{"--gpu", "two", `invalid --gpu "two": want a number of GPUs, 0 or more`},
	} {
		code, _, errOut := mainRun(t, helloProgram(), filepath.Join(t.TempDir(), "x.db"), "worker",
			"--server", "http://127.0.0.1:1", tc.flag, tc.value)
		if code != cli.ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("worker %s %q: exit %d, stderr %q; want exit 2 with %q", tc.flag, tc.value, code, errOut, tc.want)
		}
	}
}
