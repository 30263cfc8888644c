// Package schedule is Baton's schedule arithmetic: it parses the schedules
// users write (cron expressions, fixed intervals with an anchor, RFC 5545
// recurrence rules, each with an IANA time zone) and computes their fire
// times. It is pure: no clock, no store, no goroutines; every function is
// safe for concurrent use and every Schedule is immutable.
//
// Cron and RRULE fire times are wall-clock times in the schedule's zone.
// Across daylight-saving transitions each wall-clock match fires exactly
// once: a match in the spring gap fires at the first instant after the gap,
// a match in the autumn overlap at its first (daylight-time) occurrence.
// Schedules that fire every hour (a cron hour field that matches all 24
// hours, an RRULE with FREQ=HOURLY, MINUTELY or SECONDLY and no BYHOUR
// restriction) follow the clock as it runs instead: they fire at both
// occurrences of a repeated wall time and not at all at wall times the
// clock skips, so an hourly job runs once every real hour. Intervals are
// elapsed time from their anchor. docs/architecture.md ("Schedules and
// daylight saving") states the rule in full.
package schedule

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	// The zone database, for machines without one (containers, Windows):
	// Go uses the system's when there is one.
	_ "time/tzdata"
)

// Spec is a schedule as users write it. Exactly one of Cron, Interval and
// RRule is set.
type Spec struct {
	// Cron is a cron expression: 5 fields (minute hour day-of-month month
	// day-of-week), 6 fields (a seconds field first), or a macro: @yearly,
	// @annually, @monthly, @weekly, @daily, @midnight or @hourly. @every is
	// refused: a fixed interval is Interval.
	Cron string
	// Interval is a fixed interval, at least 1s: fire times are
	// Anchor + k*Interval for every integer k.
	Interval time.Duration
	// Anchor is the interval's phase; the zero time means the Unix epoch.
	// It is only meaningful with Interval.
	Anchor time.Time
	// RRule is an RFC 5545 recurrence: an RRULE (with or without the
	// "RRULE:" prefix), optionally on several lines with DTSTART
	// (DTSTART;TZID=... or a UTC time ending in Z), EXDATE and RDATE.
	// Without DTSTART the rule starts at 2001-01-01T00:00:00 (a Monday)
	// in the schedule's zone, so defaults taken from DTSTART are midnight,
	// Mondays, the 1st of the month and January.
	RRule string
	// Timezone is the IANA name of the zone Cron and RRule wall-clock
	// times are in; "" means UTC (or, for an RRULE, DTSTART's TZID).
	Timezone string
}

// Schedule is a parsed schedule. Implementations are immutable and safe
// for concurrent use.
type Schedule interface {
	// Next returns the first fire time strictly after after, or the zero
	// time if there is none: an RRULE whose COUNT or UNTIL has ended, or
	// a schedule that can never fire (a cron expression for February 30
	// returns zero after searching cronHorizon ahead). Successive calls
	// with the previous result give strictly increasing times, each fire
	// time once. The result is in the schedule's zone.
	Next(after time.Time) time.Time
	// String returns a canonical description of the schedule, which
	// names its kind, its expression and its zone.
	String() string
}

// Parse validates s and returns its Schedule. Its errors are *FieldError
// and name the field at fault.
func Parse(s Spec) (Schedule, error) {
	set := 0
	if strings.TrimSpace(s.Cron) != "" {
		set++
	}
	if s.Interval != 0 {
		set++
	}
	if strings.TrimSpace(s.RRule) != "" {
		set++
	}
	if set != 1 {
		msg := "set exactly one of cron, interval or rrule"
		if set > 1 {
			msg = "set only one of cron, interval or rrule"
		}
		return nil, &FieldError{Field: "schedule", Message: msg}
	}
	switch {
	case s.Interval != 0:
		if s.Timezone != "" {
			if _, err := loadZone(s.Timezone); err != nil {
				return nil, err
			}
		}
		return parseInterval(s.Interval, s.Anchor)
	case strings.TrimSpace(s.Cron) != "":
		if !s.Anchor.IsZero() {
			return nil, &FieldError{Field: "anchor", Value: s.Anchor.Format(time.RFC3339), Message: "an anchor applies to an interval only"}
		}
		loc, err := loadZone(s.Timezone)
		if err != nil {
			return nil, err
		}
		return parseCron(s.Cron, loc)
	default:
		if !s.Anchor.IsZero() {
			return nil, &FieldError{Field: "anchor", Value: s.Anchor.Format(time.RFC3339), Message: "an anchor applies to an interval only"}
		}
		return parseRRule(s.RRule, s.Timezone)
	}
}

// loadZone loads an IANA zone; "" and "UTC" are UTC. "Local" is refused:
// it would depend on the machine that computes the schedule.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, &FieldError{Field: "timezone", Value: name, Message: "name an IANA time zone such as Europe/Berlin (Local would differ between servers)"}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &FieldError{Field: "timezone", Value: name, Message: "not an IANA time zone name (such as Europe/Berlin or America/New_York)"}
	}
	return loc, nil
}

// Between returns the fire times t of s with from < t <= to, in order, at
// most max of them (max <= 0: no bound).
func Between(s Schedule, from, to time.Time, max int) []time.Time {
	var out []time.Time
	for t := s.Next(from); !t.IsZero() && !t.After(to); t = s.Next(t) {
		out = append(out, t)
		if max > 0 && len(out) >= max {
			break
		}
	}
	return out
}

// NextN returns the first n fire times of s after after (fewer if the
// schedule ends).
func NextN(s Schedule, after time.Time, n int) []time.Time {
	out := make([]time.Time, 0, max(n, 0))
	for t := after; len(out) < n; {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// FieldError is the error of Parse, ParseInterval and ParseDuration. Field
// is "cron", "interval", "anchor", "rrule" or "timezone", or "schedule"
// when none or several of cron, interval and rrule are set (or the field
// name ParseDuration was given); Value is the input at fault and Message
// says what is wrong with it.
type FieldError struct {
	Field, Value, Message string
}

// Error names the field first, as every surface does, for example
// `field "cron": invalid cron "61 * * * *": minute 61 is out of range
// 0-59` or `field "timezone": unknown timezone "Mars/Base": ...`.
func (e *FieldError) Error() string {
	prefix := fmt.Sprintf("field %q: ", e.Field)
	switch {
	case e.Field == "timezone":
		return prefix + fmt.Sprintf("unknown timezone %q: %s", e.Value, e.Message)
	case e.Value == "":
		return prefix + fmt.Sprintf("invalid %s: %s", e.Field, e.Message)
	default:
		return prefix + fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Message)
	}
}

// Jitter returns a deterministic delay in [0, max) for the fire time t of
// the schedule named by key: an FNV-1a hash of key and t's Unix
// nanoseconds, modulo max. The same key and time always give the same
// delay, so every server computes the same one. max <= 0 gives 0.
func Jitter(key string, t time.Time, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	var b [8]byte // a fixed-size suffix, so key and time cannot run together
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano()))
	h.Write(b[:])
	return time.Duration(h.Sum64() % uint64(max))
}
