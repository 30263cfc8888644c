// Package schedule is a TEMPORARY stand-in for the schedule package being
// written on branch feat/schedule, with its API, so that the deployments
// code builds and its tests run before the real package is merged. It is
// deleted before merging main.
package schedule

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// Spec describes a schedule: exactly one of Cron, Interval, RRule.
type Spec struct {
	Cron     string
	Interval time.Duration
	Anchor   time.Time
	RRule    string
	Timezone string
}

// FieldError is an invalid field of a Spec.
type FieldError struct{ Field, Value, Message string }

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Message)
}

// Schedule yields fire times.
type Schedule interface {
	Next(after time.Time) time.Time
	String() string
}

// Parse validates s.
func Parse(s Spec) (Schedule, error) {
	loc := time.UTC
	if s.Timezone != "" {
		l, err := time.LoadLocation(s.Timezone)
		if err != nil || s.Timezone == "Local" {
			return nil, &FieldError{"timezone", s.Timezone, "unknown time zone"}
		}
		loc = l
	}
	n := 0
	for _, set := range []bool{s.Cron != "", s.Interval != 0, s.RRule != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, &FieldError{"schedule", "", "give exactly one of cron, interval, rrule"}
	}
	switch {
	case s.Interval != 0:
		if s.Interval < time.Second {
			return nil, &FieldError{"interval", s.Interval.String(), "must be at least 1s"}
		}
		return interval{s.Interval, s.Anchor}, nil
	case s.RRule != "":
		return nil, &FieldError{"rrule", s.RRule, "not supported by the stand-in"}
	}
	f := strings.Fields(s.Cron)
	if len(f) != 5 {
		return nil, &FieldError{"cron", s.Cron, "expected 5 fields"}
	}
	c := cron{src: s.Cron, loc: loc}
	var err error
	if c.min, err = field(f[0], 60); err != nil {
		return nil, &FieldError{"cron", s.Cron, err.Error()}
	}
	if c.hour, err = field(f[1], 24); err != nil {
		return nil, &FieldError{"cron", s.Cron, err.Error()}
	}
	for _, x := range f[2:] {
		if x != "*" {
			return nil, &FieldError{"cron", s.Cron, "the stand-in supports * only for day, month, weekday"}
		}
	}
	return c, nil
}

func field(s string, n int) ([]bool, error) {
	out := make([]bool, n)
	step, start := 1, -1
	if strings.HasPrefix(s, "*/") {
		v, err := strconv.Atoi(s[2:])
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad step %q", s)
		}
		step, start = v, 0
	} else if s == "*" {
		start = 0
	}
	if start == 0 {
		for i := 0; i < n; i += step {
			out[i] = true
		}
		return out, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v >= n {
		return nil, fmt.Errorf("bad value %q", s)
	}
	out[v] = true
	return out, nil
}

type interval struct {
	d      time.Duration
	anchor time.Time
}

func (i interval) Next(after time.Time) time.Time {
	a := i.anchor
	if a.IsZero() {
		a = time.Unix(0, 0)
	}
	if after.Before(a) {
		return a
	}
	k := after.Sub(a)/i.d + 1
	return a.Add(k * i.d).UTC()
}

func (i interval) String() string { return "every " + i.d.String() }

type cron struct {
	src       string
	loc       *time.Location
	min, hour []bool
}

func (c cron) Next(after time.Time) time.Time {
	t := after.Truncate(time.Minute).Add(time.Minute)
	for i := 0; i < 60*24*8; i++ {
		l := t.In(c.loc)
		if c.min[l.Minute()] && c.hour[l.Hour()] {
			return t.UTC()
		}
		t = t.Add(time.Minute)
	}
	return time.Time{}
}

func (c cron) String() string { return "cron " + c.src }

// Between returns the fire times t with from < t <= to, at most max.
func Between(s Schedule, from, to time.Time, max int) []time.Time {
	var out []time.Time
	for t := s.Next(from); !t.IsZero() && !t.After(to) && len(out) < max; t = s.Next(t) {
		out = append(out, t)
	}
	return out
}

// NextN returns the next n fire times after after.
func NextN(s Schedule, after time.Time, n int) []time.Time {
	var out []time.Time
	for t := s.Next(after); !t.IsZero() && len(out) < n; t = s.Next(t) {
		out = append(out, t)
	}
	return out
}

// Jitter returns a deterministic delay in [0, max).
func Jitter(key string, t time.Time, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d", key, t.UnixNano())
	return time.Duration(h.Sum64() % uint64(max))
}

// ParseInterval parses a duration such as "90s", "15m", "1h30m", "2d".
func ParseInterval(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, &FieldError{"interval", s, "expected a positive duration such as 90s, 15m, 1h or 2d"}
	}
	return d, nil
}
