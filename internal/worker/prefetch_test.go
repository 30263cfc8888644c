package worker

import (
	"testing"
	"time"
)

// TestPrefetchSize: the prefetch buffer holds about twice the slots that
// free during one report's round trip, at most the slots, and nothing for
// task runs long next to the round trip or before both are measured.
func TestPrefetchSize(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		slots    int
		taskDur  time.Duration
		rtt      time.Duration
		prefetch int
	}{
		{"not measured yet", 8, 0, 0, 0},
		{"no round trip yet", 8, 10 * ms, 0, 0},
		{"10 ms tasks, 3 ms round trips", 8, 10 * ms, 3 * ms, 5},
		{"1 ms tasks: at most the slots", 8, ms, 3 * ms, 8},
		{"100 ms tasks: a claim keeps up", 8, 100 * ms, 3 * ms, 0},
		{"one slot, 5 ms tasks", 1, 5 * ms, 2 * ms, 1},
		{"2,000 slots, quick tasks: at most maxPrefetch", 2000, ms, 3 * ms, maxPrefetch},
		{"one slot, 10 ms tasks", 1, 10 * ms, 2 * ms, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &Worker{cfg: Config{Slots: map[string]int{"q": tc.slots}}, taskDur: map[string]time.Duration{"q": tc.taskDur}, rtt: tc.rtt}
			if got := w.prefetchLocked("q"); got != tc.prefetch {
				t.Errorf("prefetch = %d, want %d", got, tc.prefetch)
			}
		})
	}
}

func TestAverage(t *testing.T) {
	t.Parallel()
	if got := average(0, 10); got != 10 {
		t.Errorf("first sample: %v, want 10", got)
	}
	if got := average(10, 20); got != 12 {
		t.Errorf("average(10, 20) = %v, want 12", got)
	}
}
