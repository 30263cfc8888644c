package store

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Resources is an amount of compute: what a distributed task run needs to
// execute, or what a worker has. CPU is in millicores (1000 is one CPU),
// Memory in bytes. A zero component needs (or has) none of that resource;
// no component is ever negative.
type Resources struct {
	CPUMilli int64 `json:"cpu_milli,omitempty"`
	Memory   int64 `json:"memory,omitempty"`
	GPU      int64 `json:"gpu,omitempty"`
}

// IsZero reports whether r needs nothing.
func (r Resources) IsZero() bool { return r == Resources{} }

// Check returns an error naming the component of r that is negative.
func (r Resources) Check() error {
	switch {
	case r.CPUMilli < 0:
		return fmt.Errorf("cpu must not be negative")
	case r.Memory < 0:
		return fmt.Errorf("memory must not be negative")
	case r.GPU < 0:
		return fmt.Errorf("gpu must not be negative")
	}
	return nil
}

// FitsIn reports whether r fits in have: every component r needs is
// available.
func (r Resources) FitsIn(have Resources) bool {
	return r.CPUMilli <= have.CPUMilli && r.Memory <= have.Memory && r.GPU <= have.GPU
}

// Add returns r plus n times o.
func (r Resources) Add(o Resources, n int) Resources {
	m := int64(n)
	return Resources{CPUMilli: r.CPUMilli + m*o.CPUMilli, Memory: r.Memory + m*o.Memory, GPU: r.GPU + m*o.GPU}
}

// Count returns how many task runs needing r fit in free at once:
// math.MaxInt when r needs nothing, 0 when one does not fit.
func (r Resources) Count(free Resources) int {
	n := int64(math.MaxInt)
	for _, c := range [][2]int64{{r.CPUMilli, free.CPUMilli}, {r.Memory, free.Memory}, {r.GPU, free.GPU}} {
		if c[0] <= 0 {
			continue
		}
		n = min(n, max(c[1], 0)/c[0])
	}
	return int(n)
}

// Missing describes the components of r that have lacks, such as
// "GPU 1 (has 0)", joined by commas; empty when need fits.
func (r Resources) Missing(have Resources) string {
	var parts []string
	if r.CPUMilli > have.CPUMilli {
		parts = append(parts, fmt.Sprintf("CPU %s (has %s)", FormatCPU(r.CPUMilli), FormatCPU(have.CPUMilli)))
	}
	if r.Memory > have.Memory {
		parts = append(parts, fmt.Sprintf("memory %s (has %s)", FormatMemory(r.Memory), FormatMemory(have.Memory)))
	}
	if r.GPU > have.GPU {
		parts = append(parts, fmt.Sprintf("GPU %d (has %d)", r.GPU, have.GPU))
	}
	return strings.Join(parts, ", ")
}

// String describes r as "CPU 2, memory 4GiB, GPU 1", leaving out the
// components that are zero ("nothing" when all are).
func (r Resources) String() string {
	var parts []string
	if r.CPUMilli != 0 {
		parts = append(parts, "CPU "+FormatCPU(r.CPUMilli))
	}
	if r.Memory != 0 {
		parts = append(parts, "memory "+FormatMemory(r.Memory))
	}
	if r.GPU != 0 {
		parts = append(parts, fmt.Sprintf("GPU %d", r.GPU))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// TaskSpec is what a worker's code says about one of its tasks that the
// server needs for placement: the task's queue, the resources each of its
// task runs needs, and its fallback (another task with the same input and
// output types, run instead, on FallbackQueue or else Queue, when no live
// worker that could fit Need serves Queue once a task run has waited
// FallbackAfterMS).
type TaskSpec struct {
	Queue           string    `json:"queue,omitempty"`
	Need            Resources `json:"need,omitzero"`
	Fallback        string    `json:"fallback,omitempty"`
	FallbackQueue   string    `json:"fallback_queue,omitempty"`
	FallbackAfterMS int64     `json:"fallback_after_ms,omitempty"`
}

// FallbackAfter is the wait before the fallback, as a duration.
func (s TaskSpec) FallbackAfter() time.Duration {
	return time.Duration(s.FallbackAfterMS) * time.Millisecond
}

// memoryUnits are the units ParseMemory accepts, by their lower-case
// spelling: binary (KiB...) and decimal (KB...) multiples of a byte.
var memoryUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// ErrMemoryUnit is the error of ParseMemory for an unknown unit.
var ErrMemoryUnit = errors.New("unknown unit: use B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), such as 4GiB")

// ParseMemory parses an amount of memory: a non-negative decimal number
// (digits with an optional fraction) followed by an optional unit, with
// optional spaces between, such as "4GiB", "512 MiB", "1.5GB" or
// "1073741824" (bytes). Units are B, KiB, MiB, GiB, TiB (powers of 1024)
// and KB, MB, GB, TB (powers of 1000), in any case. A fraction of a byte
// is rounded down. Other forms (signs, exponents, other units, such as K,
// Gi or GiB/s) are refused, as are amounts of 2^63 bytes or more.
func ParseMemory(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || num == "." || strings.Count(num, ".") > 1 {
		if strings.HasPrefix(t, "-") {
			return 0, errors.New("must not be negative")
		}
		return 0, fmt.Errorf("%q is not an amount of memory, such as 4GiB or 512MiB", s)
	}
	mult, ok := memoryUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q: %w", s, ErrMemoryUnit)
	}
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" {
		whole = "0"
	}
	v, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		return 0, fmt.Errorf("%q is not an amount of memory, such as 4GiB or 512MiB", s)
	}
	v.Mul(v, big.NewInt(mult))
	v.Quo(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !v.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return v.Int64(), nil
}

// FormatMemory writes bytes with the largest binary unit that divides it
// ("4GiB", "1536MiB"), or as bytes ("1000B").
func FormatMemory(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// CPUMilli converts a number of CPUs to millicores: fractions down to a
// thousandth (0.5 is 500 millicores) are allowed; a negative number, a
// finer fraction, NaN or an infinite number is an error.
func CPUMilli(cpus float64) (int64, error) {
	switch {
	case math.IsNaN(cpus) || math.IsInf(cpus, 0):
		return 0, fmt.Errorf("%v is not a number of CPUs", cpus)
	case cpus < 0:
		return 0, errors.New("must not be negative")
	case cpus > 1e15:
		return 0, fmt.Errorf("%v is too large", cpus)
	}
	m := math.Round(cpus * 1000)
	if math.Abs(m-cpus*1000) > 1e-6*max(1, cpus) {
		return 0, fmt.Errorf("%v: CPUs are counted in thousandths at the finest (such as 0.5 or 0.25)", cpus)
	}
	return int64(m), nil
}

// ParseCPU parses a number of CPUs as the command line gives it: "16",
// "0.5", or millicores such as "500m". Only digits with an optional
// fraction are numbers here (no signs, exponents or spaces inside).
func ParseCPU(s string) (int64, error) {
	t := strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a number of CPUs, such as 16, 0.5 or 500m", s)
	if strings.HasPrefix(t, "-") {
		return 0, errors.New("must not be negative")
	}
	milli := false
	if m, ok := strings.CutSuffix(t, "m"); ok {
		t, milli = m, true
	}
	if t == "" || t == "." || strings.Count(t, ".") > 1 || strings.Trim(t, "0123456789.") != "" || (milli && strings.Contains(t, ".")) {
		return 0, bad
	}
	if milli {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, bad
	}
	return CPUMilli(f)
}

// FormatCPU writes millicores as a number of CPUs ("2", "0.5").
func FormatCPU(m int64) string {
	if m%1000 == 0 {
		return fmt.Sprint(m / 1000)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%d.%03d", m/1000, m%1000), "0"), ".")
}

// ActionFallback is the history action of task runs that moved to their
// task's fallback (payload: task, fallback, queue, keys, n).
const ActionFallback = "fallback"

// TaskRunFallbackParams moves the PENDING distributed task runs of Task on
// Queue created at or before CreatedBefore (at most Limit, oldest first;
// 0: 1000) to the task To on the queue ToQueue (empty: Queue): their
// task and queue change, their History gets a transition PENDING ->
// PENDING of cause "fallback" with Reason, and each run concerned gets
// one history entry (ActionFallback, by the system, with Reason) at At
// (zero: now). Task runs held by a concurrent writer are skipped. It
// returns how many task runs moved.
type TaskRunFallbackParams struct {
	Queue, Task   string
	To, ToQueue   string
	CreatedBefore time.Time
	Reason        string
	Limit         int
	At            time.Time
}

// ClaimNeeds claims the entries of p.Tasks that have a Need, in order,
// after the others were claimed into taken (taken[i] for p.Tasks[i]), as
// TaskRunClaimParams.Need says: each with its Limit lowered to what the
// earlier entries of its queues left of it and to what fits in what is
// left of p.Free, through claim. Backends call it from Claim.
func ClaimNeeds(p ClaimParams, taken [][]TaskRun, claim func(tp TaskRunClaimParams) ([]TaskRun, error)) error {
	if !slices.ContainsFunc(p.Tasks, func(tp TaskRunClaimParams) bool { return !tp.Need.IsZero() }) {
		return nil // the claims of workers without needs cost nothing more
	}
	used := map[string]int{} // per queue list: task runs claimed so far
	key := func(tp TaskRunClaimParams) string { return strings.Join(tp.Queues, "\x00") }
	for i, tp := range p.Tasks {
		if tp.Need.IsZero() {
			used[key(tp)] += len(taken[i])
		}
	}
	free := p.Free
	for i, tp := range p.Tasks {
		if tp.Need.IsZero() {
			continue
		}
		tp.Limit = min(tp.Limit-used[key(tp)], tp.Need.Count(free))
		if tp.Limit < 1 {
			continue
		}
		trs, err := claim(tp)
		if err != nil {
			return err
		}
		taken[i] = trs
		used[key(tp)] += len(trs)
		free = free.Add(tp.Need, -len(trs))
	}
	return nil
}
