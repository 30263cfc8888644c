package schedule

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// intervalSchedule fires at anchor + k*every for every integer k: elapsed
// time, unaffected by daylight saving.
type intervalSchedule struct {
	every  time.Duration
	anchor time.Time
}

func parseInterval(every time.Duration, anchor time.Time) (Schedule, error) {
	if every <= 0 {
		return nil, &FieldError{Field: "interval", Value: every.String(), Message: "must be positive"}
	}
	if every < time.Second {
		return nil, &FieldError{Field: "interval", Value: every.String(), Message: "must be at least 1s"}
	}
	if anchor.IsZero() {
		anchor = time.Unix(0, 0).UTC()
	}
	return &intervalSchedule{every: every, anchor: anchor}, nil
}

// String returns `every D from ANCHOR`.
func (s *intervalSchedule) String() string {
	return fmt.Sprintf("every %s from %s", s.every, s.anchor.Format(time.RFC3339Nano))
}

// Next implements Schedule: the first anchor + k*every after after.
func (s *intervalSchedule) Next(after time.Time) time.Time {
	d := after.Sub(s.anchor)
	const maxD, minD = time.Duration(1<<63 - 1), time.Duration(-1 << 63)
	if d != maxD && d != minD {
		k := d / s.every
		if d < 0 && d%s.every != 0 {
			k-- // floor
		}
		if k+1 <= maxD/s.every && k+1 >= minD/s.every {
			return s.anchor.Add((k + 1) * s.every)
		}
	}
	// About 292 years or more apart: big arithmetic on Unix nanoseconds.
	nanos := func(t time.Time) *big.Int {
		n := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e9))
		return n.Add(n, big.NewInt(int64(t.Nanosecond())))
	}
	diff := new(big.Int).Sub(nanos(after), nanos(s.anchor))
	k := new(big.Int).Div(diff, big.NewInt(int64(s.every))) // Euclidean: floor for a positive divisor
	k.Add(k, big.NewInt(1))
	at := k.Mul(k, big.NewInt(int64(s.every)))
	at.Add(at, nanos(s.anchor))
	sec, nsec := new(big.Int).DivMod(at, big.NewInt(1e9), new(big.Int))
	if !sec.IsInt64() {
		return time.Time{}
	}
	return time.Unix(sec.Int64(), nsec.Int64()).In(s.anchor.Location())
}

// ParseInterval parses an interval as --interval gives it: a Go duration
// ("90s", "1h30m") where "d" is also a unit of 24 hours ("1d", "1d12h").
// It must be at least 1s. Its errors are *FieldError with Field
// "interval".
func ParseInterval(s string) (time.Duration, error) {
	d, err := ParseDuration("interval", s)
	if err != nil {
		return 0, err
	}
	if d < time.Second {
		return 0, &FieldError{Field: "interval", Value: s, Message: "must be at least 1s"}
	}
	return d, nil
}

// ParseDuration parses a non-negative duration as ParseInterval does (Go
// durations, plus "d" for 24 hours) for the option named field (such as
// "jitter" or "catchup_window"); its errors are *FieldError with that
// Field.
func ParseDuration(field, s string) (time.Duration, error) {
	fail := func(msg string) (time.Duration, error) {
		return 0, &FieldError{Field: field, Value: s, Message: msg}
	}
	in := strings.TrimSpace(s)
	if in == "" {
		return fail("empty (write a duration such as 90s, 15m, 1h30m or 1d)")
	}
	if in[0] == '-' {
		return fail("must not be negative")
	}
	var total time.Duration
	rest := strings.TrimPrefix(in, "+")
	if rest == "0" {
		return 0, nil
	}
	for rest != "" {
		// One number and its unit.
		i := 0
		for i < len(rest) && (rest[i] == '.' || rest[i] >= '0' && rest[i] <= '9') {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return fail("not a duration (write one such as 90s, 15m, 1h30m or 1d; units ns, us, ms, s, m, h, d)")
		}
		var part time.Duration
		if unit == "d" {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return fail("not a duration: bad number " + strconv.Quote(num))
			}
			if f*24*float64(time.Hour) >= 1<<63 {
				return fail("too long")
			}
			part = time.Duration(f * 24 * float64(time.Hour))
		} else {
			p, err := time.ParseDuration(num + unit)
			if err != nil {
				return fail("not a duration (write one such as 90s, 15m, 1h30m or 1d; units ns, us, ms, s, m, h, d)")
			}
			part = p
		}
		if total > time.Duration(1<<63-1)-part {
			return fail("too long")
		}
		total += part
	}
	return total, nil
}
