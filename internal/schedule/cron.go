package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronHorizon bounds the search for a cron schedule's next fire time: a
// schedule that matches no day within it (February 30) never fires, and
// Next returns the zero time. Every day-of-month, month and weekday
// combination that occurs at all occurs within 8 years of any date (a
// February 29 across a skipped century leap year, 2096 to 2104).
const cronHorizon = 10 // years

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronField describes one field of a cron expression for validation.
type cronField struct {
	name     string
	min, max int
	names    map[string]int
	hint     string
}

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dowNames   = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
	cronFields = []cronField{
		{name: "second", min: 0, max: 59},
		{name: "minute", min: 0, max: 59},
		{name: "hour", min: 0, max: 23},
		{name: "day-of-month", min: 1, max: 31},
		{name: "month", min: 1, max: 12, names: monthNames},
		{name: "day-of-week", min: 0, max: 6, names: dowNames, hint: " (0 is Sunday)"},
	}
	cronMacros = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)

// cronSchedule is a parsed cron expression: robfig/cron's bit fields,
// with Baton's own fire-time search in the schedule's zone.
type cronSchedule struct {
	expr    string
	spec    *cron.SpecSchedule
	loc     *time.Location
	byClock bool // the hour field matches every hour
}

func cronError(expr, format string, args ...any) error {
	return &FieldError{Field: "cron", Value: expr, Message: fmt.Sprintf(format, args...)}
}

func parseCron(raw string, loc *time.Location) (Schedule, error) {
	expr := strings.Join(strings.Fields(raw), " ")
	if strings.HasPrefix(expr, "@") {
		if strings.HasPrefix(expr, "@every") {
			return nil, cronError(expr, "@every is not a cron schedule: use an interval (--interval) instead")
		}
		known := false
		for _, m := range cronMacros {
			known = known || expr == m
		}
		if !known {
			return nil, cronError(expr, "unknown macro (use one of %s)", strings.Join(cronMacros, ", "))
		}
	} else {
		if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
			return nil, cronError(expr, "give the time zone in the timezone field, not in the expression")
		}
		fields := strings.Fields(expr)
		if len(fields) != 5 && len(fields) != 6 {
			return nil, cronError(expr, "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (a seconds field first), found %d", len(fields))
		}
		defs := cronFields
		if len(fields) == 5 {
			defs = cronFields[1:]
		}
		for i, f := range fields {
			if err := checkCronField(defs[i], f); err != nil {
				return nil, cronError(expr, "%s", err)
			}
		}
	}
	parsed, err := cronParser.Parse(expr)
	if err != nil {
		return nil, cronError(expr, "%s", err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok { // only @every gives another type, refused above
		return nil, cronError(expr, "not a cron schedule")
	}
	const allHours = 1<<24 - 1
	return &cronSchedule{expr: expr, spec: spec, loc: loc, byClock: spec.Hour&allHours == allHours}, nil
}

// checkCronField validates one field (a comma-separated list of *, ?,
// N, N-M, each optionally /STEP) with a message naming the field.
func checkCronField(def cronField, field string) error {
	value := func(s string) (int, error) {
		if n, ok := def.names[strings.ToLower(s)]; ok {
			return n, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || s == "" || s[0] == '+' || s[0] == '-' {
			what := "a number"
			if def.names != nil {
				what = "a number or a name"
			}
			return 0, fmt.Errorf("%s %q is not %s", def.name, s, what)
		}
		if n < def.min || n > def.max {
			return 0, fmt.Errorf("%s %d is out of range %d-%d%s", def.name, n, def.min, def.max, def.hint)
		}
		return n, nil
	}
	for _, part := range strings.Split(field, ",") {
		if part == "" {
			return fmt.Errorf("%s field %q has an empty list item", def.name, field)
		}
		rng, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || step[0] == '+' || step[0] == '-' {
				return fmt.Errorf("%s step %q is not a number", def.name, step)
			}
			if n < 1 {
				return fmt.Errorf("%s step %d must be at least 1", def.name, n)
			}
			if strings.Contains(step, "/") {
				return fmt.Errorf("%s %q has more than one /", def.name, part)
			}
		}
		if rng == "*" || rng == "?" {
			continue
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, err := value(lo)
		if err != nil {
			return err
		}
		if isRange {
			if strings.Contains(hi, "-") {
				return fmt.Errorf("%s range %q has more than one -", def.name, rng)
			}
			b, err := value(hi)
			if err != nil {
				return err
			}
			if a > b {
				return fmt.Errorf("%s range %s runs backwards (%d > %d)", def.name, rng, a, b)
			}
		}
	}
	return nil
}

// String returns `cron "EXPR" in ZONE`.
func (s *cronSchedule) String() string {
	return fmt.Sprintf("cron %q in %s", s.expr, s.loc)
}

// Next implements Schedule.
func (s *cronSchedule) Next(after time.Time) time.Time {
	limit := civilOf(after, s.loc).AddDate(cronHorizon, 0, 0)
	return nextWall(s, s.loc, s.byClock, after, limit)
}

// nextBit returns the smallest v in [from, max] whose bit is set in b, or
// -1.
func nextBit(b uint64, from, max int) int {
	if from > max {
		return -1
	}
	m := b >> uint(from)
	if m == 0 {
		return -1
	}
	v := from + bits.TrailingZeros64(m)
	if v > max {
		return -1
	}
	return v
}

// dayMatches is robfig/cron's day rule: when day-of-month or day-of-week
// is a star, both must match (the star matches every day); otherwise
// either may.
func (s *cronSchedule) dayMatches(t time.Time) bool {
	dom := s.spec.Dom&(1<<uint(t.Day())) != 0
	dow := s.spec.Dow&(1<<uint(t.Weekday())) != 0
	const star = 1 << 63
	if s.spec.Dom&star != 0 || s.spec.Dow&star != 0 {
		return dom && dow
	}
	return dom || dow
}

// first implements civilSource: it skips by fields (month, day, hour,
// minute, second), never by single minutes over long stretches.
func (s *cronSchedule) first(from, limit time.Time) (time.Time, bool) {
	t := from
	for t.Before(limit) {
		y, mo, d := t.Date()
		h, mi, sec := t.Clock()
		if m := nextBit(s.spec.Month, int(mo), 12); m != int(mo) {
			if m < 0 {
				t = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC)
			} else {
				t = time.Date(y, time.Month(m), 1, 0, 0, 0, 0, time.UTC)
			}
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if v := nextBit(s.spec.Hour, h, 23); v != h {
			if v < 0 {
				t = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			} else {
				t = time.Date(y, mo, d, v, 0, 0, 0, time.UTC)
			}
			continue
		}
		if v := nextBit(s.spec.Minute, mi, 59); v != mi {
			if v < 0 {
				t = time.Date(y, mo, d, h+1, 0, 0, 0, time.UTC)
			} else {
				t = time.Date(y, mo, d, h, v, 0, 0, time.UTC)
			}
			continue
		}
		if v := nextBit(s.spec.Second, sec, 59); v != sec {
			if v < 0 {
				t = time.Date(y, mo, d, h, mi+1, 0, 0, time.UTC)
			} else {
				t = time.Date(y, mo, d, h, mi, v, 0, time.UTC)
			}
			continue
		}
		return t, true
	}
	return time.Time{}, false
}
