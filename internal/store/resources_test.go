package store

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		err  string // a part of the error; empty: no error
	}{
		{"0", 0, ""},
		{"1073741824", 1 << 30, ""},
		{"4GiB", 4 << 30, ""},
		{"4gib", 4 << 30, ""},
		{"64GiB", 64 << 30, ""},
		{"512 MiB", 512 << 20, ""},
		{" 1KiB ", 1024, ""},
		{"2TiB", 2 << 40, ""},
		{"1.5GiB", 3 << 29, ""},
		{".5KiB", 512, ""},
		{"4GB", 4e9, ""},
		{"4 GB", 4e9, ""},
		{"1kb", 1000, ""},
		{"3MB", 3e6, ""},
		{"1TB", 1e12, ""},
		{"100B", 100, ""},
		{"1.7B", 1, ""},
		{"8388607TiB", 8388607 << 40, ""},
		{"8388608TiB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"4G", 0, "unknown unit"},
		{"4Gi", 0, "unknown unit"},
		{"4K", 0, "unknown unit"},
		{"4 gigabytes", 0, "unknown unit"},
		{"4GiB/s", 0, "unknown unit"},
		{"-1GiB", 0, "negative"},
		{"+1GiB", 0, "not an amount"},
		{"", 0, "not an amount"},
		{"GiB", 0, "not an amount"},
		{".", 0, "not an amount"},
		{"1.2.3GiB", 0, "not an amount"},
		{"1e9", 0, "unknown unit"},
		{"0x10", 0, "unknown unit"},
	}
	for _, tc := range tests {
		got, err := ParseMemory(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseMemory(%q): %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseMemory(%q) = %d, %v; want an error with %q", tc.in, got, err, tc.err)
		case tc.err == "" && got != tc.want:
			t.Errorf("ParseMemory(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if _, err := ParseMemory("4 GB/s"); !errors.Is(err, ErrMemoryUnit) {
		t.Errorf("an unknown unit is not ErrMemoryUnit: %v", err)
	}
}

// FuzzParseMemory checks that ParseMemory never panics, never returns a
// negative amount, and that what it accepts reads back: the formatted
// amount parses to the same number of bytes.
func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"4GiB", "1.5 GB", "0", "8388607TiB", "-1", "1e9", "..", "4 gib", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMemory(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseMemory(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseMemory(%q) = %d, negative", s, n)
		}
		back, err := ParseMemory(FormatMemory(n))
		if err != nil || back != n {
			t.Fatalf("ParseMemory(FormatMemory(%d) = %q) = %d, %v", n, FormatMemory(n), back, err)
		}
	})
}

func TestParseCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"16", 16000, ""},
		{"0.5", 500, ""},
		{"0.25", 250, ""},
		{"500m", 500, ""},
		{"0", 0, ""},
		{"1.0001", 0, "thousandths"},
		{"-1", 0, "negative"},
		{"-500m", 0, "negative"},
		{"1e3", 0, "not a number"},
		{"0.5m", 0, "not a number"},
		{"two", 0, "not a number"},
		{"", 0, "not a number"},
		{"NaN", 0, "not a number"},
		{"Inf", 0, "not a number"},
	}
	for _, tc := range tests {
		got, err := ParseCPU(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseCPU(%q): %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseCPU(%q) = %d, %v; want an error with %q", tc.in, got, err, tc.err)
		case tc.err == "" && got != tc.want:
			t.Errorf("ParseCPU(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), -0.5, 1e300} {
		if _, err := CPUMilli(f); err == nil {
			t.Errorf("CPUMilli(%v) succeeded", f)
		}
	}
}

// FuzzParseCPU checks that ParseCPU never panics and accepts no negative
// amount, and that accepted amounts read back.
func FuzzParseCPU(f *testing.F) {
	for _, s := range []string{"16", "0.5", "500m", "-1", "1e3", "0.0001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseCPU(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseCPU(%q) = %d, negative", s, n)
		}
		if back, err := ParseCPU(FormatCPU(n)); err != nil || back != n {
			t.Fatalf("ParseCPU(FormatCPU(%d) = %q) = %d, %v", n, FormatCPU(n), back, err)
		}
	})
}

func TestResourcesCount(t *testing.T) {
	t.Parallel()
	free := Resources{CPUMilli: 4000, Memory: 8 << 30, GPU: 2}
	tests := []struct {
		need Resources
		want int
	}{
		{Resources{}, math.MaxInt},
		{Resources{GPU: 1}, 2},
		{Resources{GPU: 3}, 0},
		{Resources{CPUMilli: 1500}, 2},
		{Resources{CPUMilli: 500, Memory: 3 << 30}, 2},
		{Resources{CPUMilli: 500, Memory: 1 << 30, GPU: 1}, 2},
	}
	for _, tc := range tests {
		if got := tc.need.Count(free); got != tc.want {
			t.Errorf("%v.Count(%v) = %d, want %d", tc.need, free, got, tc.want)
		}
	}
	if got := (Resources{GPU: 1}).Count(Resources{GPU: -1}); got != 0 {
		t.Errorf("Count in a negative pool = %d, want 0", got)
	}
	if got := (Resources{GPU: 1, Memory: 4 << 30}).Missing(Resources{Memory: 8 << 30}); got != "GPU 1 (has 0)" {
		t.Errorf("Missing = %q", got)
	}
	if got := (Resources{CPUMilli: 2000, Memory: 4 << 30, GPU: 1}).String(); got != "CPU 2, memory 4GiB, GPU 1" {
		t.Errorf("String = %q", got)
	}
}
