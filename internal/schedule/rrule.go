package schedule

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/teambition/rrule-go"
)

// maxRRuleCount bounds COUNT: a counted rule is iterated from DTSTART, so
// its Next costs up to COUNT steps.
const maxRRuleCount = 100000

// defaultDTStart is the wall-clock start of a rule without DTSTART: a
// Monday at midnight on the 1st of January, so the defaults an RRULE takes
// from DTSTART are plain (midnight, Mondays, the 1st, January).
var defaultDTStart = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// rruleSchedule is a parsed recurrence. rrule-go computes the rule's
// occurrences in wall-clock time (as UTC values, so without daylight
// saving); nextWall maps them to instants by Baton's rule.
type rruleSchedule struct {
	text    string
	loc     *time.Location
	byClock bool
	opt     rrule.ROption // every default made explicit, wall-clock times in UTC
	dtstart time.Time     // opt.Dtstart
	counted bool          // the rule has COUNT: iterate it from DTSTART
	never   bool          // the rule's day and time filters match no time at all
	exdates map[time.Time]bool
	rdates  []time.Time // sorted

	// noneFrom is the earliest wall-clock time (Unix seconds, 0: none
	// known) from which the rule was found to have no occurrence: a rule
	// impossible only through its INTERVAL's phase makes rrule-go search
	// to the year 9999 (tens of milliseconds), once instead of each tick.
	noneFrom atomic.Int64
}

func rruleError(text, format string, args ...any) error {
	return &FieldError{Field: "rrule", Value: text, Message: fmt.Sprintf(format, args...)}
}

// icalValue is one property line: NAME;PARAM=..;PARAM=..:VALUE.
type icalValue struct {
	name   string
	params map[string]string
	value  string
}

func splitICal(line string) (icalValue, error) {
	head, value, ok := strings.Cut(line, ":")
	if !ok {
		return icalValue{}, fmt.Errorf("line %q has no ':'", line)
	}
	parts := strings.Split(head, ";")
	v := icalValue{name: strings.ToUpper(parts[0]), params: map[string]string{}, value: value}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			return icalValue{}, fmt.Errorf("parameter %q of %s has no '='", p, v.name)
		}
		v.params[strings.ToUpper(k)] = val
	}
	return v, nil
}

// civilValue parses one DATE or DATE-TIME value as a wall-clock time in
// loc: a UTC value (ending in Z) is converted; a local one in the zone tz
// (nil: loc itself) is read on loc's wall clock.
func civilValue(s string, tz, loc *time.Location) (time.Time, error) {
	switch {
	case len(s) == len(rrule.DateTimeFormat) && strings.HasSuffix(s, "Z"):
		t, err := time.Parse(rrule.DateTimeFormat, s)
		if err != nil {
			return time.Time{}, err
		}
		return civilOf(t, loc), nil
	case len(s) == len(rrule.LocalDateTimeFormat) || len(s) == len(rrule.DateFormat):
		layout := rrule.LocalDateTimeFormat
		if len(s) == len(rrule.DateFormat) {
			layout = rrule.DateFormat
		}
		t, err := time.ParseInLocation(layout, s, time.UTC)
		if err != nil {
			return time.Time{}, err
		}
		if tz != nil && tz != loc && tz.String() != loc.String() {
			in := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, tz)
			return civilOf(in, loc), nil
		}
		return t, nil
	default:
		return time.Time{}, fmt.Errorf("%q is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS, optionally ending in Z)", s)
	}
}

func parseRRule(raw, zone string) (Schedule, error) {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(raw, "\r\n", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if head := l[:strings.IndexAny(l+":", ":;")]; strings.Contains(head, "=") {
				l = "RRULE:" + l // a bare rule: FREQ=...
			}
			lines = append(lines, l)
		}
	}
	text := strings.Join(lines, "\n")
	var (
		ruleLine  string
		dtstart   *icalValue
		dateLines []icalValue
	)
	for _, l := range lines {
		v, err := splitICal(l)
		if err != nil {
			return nil, rruleError(text, "%s", err)
		}
		switch v.name {
		case "RRULE":
			if ruleLine != "" {
				return nil, rruleError(text, "more than one RRULE line (write one rule; add single times with RDATE)")
			}
			ruleLine = strings.ToUpper(strings.TrimSpace(v.value))
		case "DTSTART":
			if dtstart != nil {
				return nil, rruleError(text, "more than one DTSTART line")
			}
			dtstart = &v
		case "EXDATE", "RDATE":
			dateLines = append(dateLines, v)
		case "EXRULE":
			return nil, rruleError(text, "EXRULE is not supported (RFC 5545 deprecates it): list the times to skip with EXDATE")
		default:
			return nil, rruleError(text, "unknown line %s (expected RRULE, DTSTART, EXDATE or RDATE)", v.name)
		}
	}
	if ruleLine == "" {
		return nil, rruleError(text, "no RRULE (such as FREQ=DAILY;BYHOUR=2;BYMINUTE=30)")
	}

	// The zone: the timezone field, else DTSTART's TZID, else UTC.
	loc, err := loadZone(zone)
	if err != nil {
		return nil, err
	}
	if dtstart != nil {
		if tzid, ok := dtstart.params["TZID"]; ok {
			tz, err := loadZone(tzid)
			if err != nil {
				return nil, rruleError(text, "DTSTART's TZID %q is not an IANA time zone", tzid)
			}
			if zone == "" {
				loc = tz
			} else if tz.String() != loc.String() {
				return nil, rruleError(text, "DTSTART's TZID %s differs from the timezone %s (give one zone)", tzid, zone)
			}
		}
	}
	paramZone := func(v icalValue) (*time.Location, error) {
		tzid, ok := v.params["TZID"]
		if !ok {
			return nil, nil
		}
		tz, err := loadZone(tzid)
		if err != nil {
			return nil, rruleError(text, "%s's TZID %q is not an IANA time zone", v.name, tzid)
		}
		return tz, nil
	}

	// The rule itself, by rrule-go, with checks of what it lets through.
	fields := map[string]string{}
	for _, part := range strings.Split(ruleLine, ";") {
		k, val, _ := strings.Cut(part, "=")
		if _, dup := fields[k]; dup {
			return nil, rruleError(text, "%s is given twice", k)
		}
		fields[k] = val
	}
	if _, ok := fields["DTSTART"]; ok {
		return nil, rruleError(text, "give DTSTART on its own line (DTSTART;TZID=Europe/Berlin:20260101T023000), not inside the RRULE")
	}
	opt, err := rrule.StrToROptionInLocation(ruleLine, time.UTC)
	if err != nil {
		return nil, rruleError(text, "%s", err)
	}
	if v, ok := fields["INTERVAL"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return nil, rruleError(text, "INTERVAL must be a whole number of at least 1")
		}
	}
	if v, ok := fields["COUNT"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > maxRRuleCount {
			return nil, rruleError(text, "COUNT must be a whole number from 1 to %d", maxRRuleCount)
		}
		if _, ok := fields["UNTIL"]; ok {
			return nil, rruleError(text, "COUNT and UNTIL exclude each other (RFC 5545)")
		}
	}
	if v, ok := fields["UNTIL"]; ok {
		if opt.Until, err = civilValue(v, nil, loc); err != nil {
			return nil, rruleError(text, "UNTIL: %s", err)
		}
	}
	if len(opt.Bysetpos) > 0 && opt.Freq >= rrule.HOURLY {
		return nil, rruleError(text, "BYSETPOS is supported with FREQ=DAILY or longer")
	}
	for i := range opt.Byweekday {
		if n := opt.Byweekday[i].N(); opt.Freq == rrule.MONTHLY && (n > 5 || n < -5) {
			return nil, rruleError(text, "BYDAY %s: a month has at most 5 of each weekday", opt.Byweekday[i].String())
		}
	}
	if opt.Interval < 1 {
		opt.Interval = 1
	}
	opt.Dtstart = defaultDTStart
	if dtstart != nil {
		tz, err := paramZone(*dtstart)
		if err != nil {
			return nil, err
		}
		if opt.Dtstart, err = civilValue(dtstart.value, tz, loc); err != nil {
			return nil, rruleError(text, "DTSTART: %s", err)
		}
	}
	if opt.Dtstart.Year() < 1 || opt.Dtstart.Year() > 9000 {
		return nil, rruleError(text, "DTSTART must be between the years 1 and 9000")
	}
	if _, err := rrule.NewRRule(*opt); err != nil {
		return nil, rruleError(text, "%s", err)
	}
	explicitDefaults(opt)
	if err := checkReachable(*opt); err != nil {
		return nil, rruleError(text, "%s", err)
	}

	s := &rruleSchedule{text: text, loc: loc, opt: *opt, dtstart: opt.Dtstart, exdates: map[time.Time]bool{}}
	s.byClock = opt.Freq >= rrule.HOURLY && (len(opt.Byhour) == 0 || allHours(opt.Byhour))
	for _, v := range dateLines {
		tz, err := paramZone(v)
		if err != nil {
			return nil, err
		}
		if p, ok := v.params["VALUE"]; ok && p != "DATE-TIME" && p != "DATE" {
			return nil, rruleError(text, "%s VALUE=%s is not supported (only DATE-TIME and DATE)", v.name, p)
		}
		for _, d := range strings.Split(v.value, ",") {
			c, err := civilValue(strings.TrimSpace(d), tz, loc)
			if err != nil {
				return nil, rruleError(text, "%s: %s", v.name, err)
			}
			if v.name == "EXDATE" {
				s.exdates[c] = true
			} else {
				s.rdates = append(s.rdates, c)
			}
		}
	}
	slices.SortFunc(s.rdates, func(a, b time.Time) int { return a.Compare(b) })
	s.rdates = slices.CompactFunc(s.rdates, time.Time.Equal)
	s.counted = opt.Count > 0
	ok, err := possible(*opt)
	if err != nil {
		return nil, rruleError(text, "%s", err)
	}
	s.never = !ok
	return s, nil
}

func allHours(hours []int) bool {
	var seen [24]bool
	n := 0
	for _, h := range hours {
		if h >= 0 && h < 24 && !seen[h] {
			seen[h] = true
			n++
		}
	}
	return n == 24
}

// explicitDefaults writes into opt the values rrule-go would take from
// DTSTART, so that the rule keeps its meaning when DTSTART is moved ahead
// by whole periods (rebase).
func explicitDefaults(opt *rrule.ROption) {
	dt := opt.Dtstart
	if len(opt.Byweekno) == 0 && len(opt.Byyearday) == 0 && len(opt.Bymonthday) == 0 &&
		len(opt.Byweekday) == 0 && len(opt.Byeaster) == 0 {
		switch opt.Freq {
		case rrule.YEARLY:
			if len(opt.Bymonth) == 0 {
				opt.Bymonth = []int{int(dt.Month())}
			}
			opt.Bymonthday = []int{dt.Day()}
		case rrule.MONTHLY:
			opt.Bymonthday = []int{dt.Day()}
		case rrule.WEEKLY:
			opt.Byweekday = []rrule.Weekday{weekdays[pyWeekday(dt.Weekday())]}
		}
	}
	if len(opt.Byhour) == 0 && opt.Freq < rrule.HOURLY {
		opt.Byhour = []int{dt.Hour()}
	}
	if len(opt.Byminute) == 0 && opt.Freq < rrule.MINUTELY {
		opt.Byminute = []int{dt.Minute()}
	}
	if len(opt.Bysecond) == 0 && opt.Freq < rrule.SECONDLY {
		opt.Bysecond = []int{dt.Second()}
	}
}

var weekdays = []rrule.Weekday{rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU}

// pyWeekday numbers weekdays from Monday (0), as rrule-go does.
func pyWeekday(d time.Weekday) int { return (int(d) + 6) % 7 }

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// checkReachable refuses sub-daily rules whose INTERVAL never lands on
// their BYHOUR, BYMINUTE or BYSECOND (FREQ=HOURLY;INTERVAL=24;BYHOUR=3
// from a midnight start): rrule-go would search for them forever.
func checkReachable(opt rrule.ROption) error {
	if opt.Freq < rrule.HOURLY {
		return nil
	}
	unit, span := 3600, 86400
	switch opt.Freq {
	case rrule.MINUTELY:
		unit = 60
	case rrule.SECONDLY:
		unit = 1
	}
	set := func(vals []int, n int) []int {
		if len(vals) == 0 {
			out := make([]int, n)
			for i := range out {
				out[i] = i
			}
			return out
		}
		return vals
	}
	hours := set(opt.Byhour, 24)
	minutes, seconds := []int{0}, []int{0}
	if opt.Freq >= rrule.MINUTELY {
		minutes = set(opt.Byminute, 60)
	}
	if opt.Freq == rrule.SECONDLY {
		seconds = set(opt.Bysecond, 60)
	}
	dt := opt.Dtstart
	start := dt.Hour()*3600 + dt.Minute()*60 + dt.Second()
	if opt.Freq == rrule.HOURLY {
		start = dt.Hour() * 3600
	} else if opt.Freq == rrule.MINUTELY {
		start = dt.Hour()*3600 + dt.Minute()*60
	}
	g := gcd(opt.Interval*unit, span)
	for _, h := range hours {
		for _, m := range minutes {
			for _, s := range seconds {
				at := h*3600 + m*60 + s
				if opt.Freq < rrule.SECONDLY {
					at = h*3600 + m*60
				}
				if opt.Freq == rrule.HOURLY {
					at = h * 3600
				}
				if ((at-start)%g+g)%g == 0 {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("INTERVAL=%d from DTSTART %s never reaches a time BYHOUR/BYMINUTE/BYSECOND allow", opt.Interval, dt.Format("15:04:05"))
}

// possible reports whether the rule's filters match any time at all: it
// runs the rule (every INTERVAL, no end) over 28 years at the end of the
// calendar rrule-go knows (9971 to 9999), which hold every weekday and
// leap-day combination. Rules that cannot occur (FREQ=YEARLY;BYMONTH=2;
// BYMONTHDAY=30) would otherwise make rrule-go search to the year 9999 on
// every Next.
func possible(opt rrule.ROption) (ok bool, err error) {
	opt.Count, opt.Until, opt.Interval = 0, time.Time{}, 1
	opt.Dtstart = periodStart(time.Date(9971, 1, 1, 0, 0, 0, 0, time.UTC), opt.Freq, opt.Wkst)
	r, err := rrule.NewRRule(opt)
	if err != nil {
		return false, err
	}
	defer func() {
		if p := recover(); p != nil {
			ok, err = false, fmt.Errorf("the rule cannot be computed (%v)", p)
		}
	}()
	_, ok = r.Iterator()()
	return ok, nil
}

// periodStart returns the start of the period of freq that holds t (the
// year, month, WKST week, day, hour, minute or second).
func periodStart(t time.Time, freq rrule.Frequency, wkst rrule.Weekday) time.Time {
	y, mo, d := t.Date()
	switch freq {
	case rrule.YEARLY:
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	case rrule.MONTHLY:
		return time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	case rrule.WEEKLY:
		back := (pyWeekday(t.Weekday()) - wkst.Day() + 7) % 7
		return time.Date(y, mo, d-back, 0, 0, 0, 0, time.UTC)
	case rrule.DAILY:
		return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	case rrule.HOURLY:
		return t.Truncate(time.Hour)
	case rrule.MINUTELY:
		return t.Truncate(time.Minute)
	default:
		return t
	}
}

// rebase returns a DTSTART for an uncounted rule, whole INTERVALs of
// periods after the rule's own, that starts at or before the period
// holding from: the rule from there has the same occurrences from from on,
// so Next need not iterate from the rule's start.
func (s *rruleSchedule) rebase(from time.Time) time.Time {
	base := periodStart(s.dtstart, s.opt.Freq, s.opt.Wkst)
	step := int64(s.opt.Interval)
	var n int64
	switch s.opt.Freq {
	case rrule.YEARLY:
		n = int64(from.Year()-base.Year())/step - 1
		if n > 0 {
			return base.AddDate(int(n*step), 0, 0)
		}
	case rrule.MONTHLY:
		months := int64(from.Year()-base.Year())*12 + int64(from.Month()-base.Month())
		n = months/step - 1
		if n > 0 {
			return base.AddDate(0, int(n*step), 0)
		}
	default:
		unit := map[rrule.Frequency]int64{rrule.WEEKLY: 7 * 86400, rrule.DAILY: 86400, rrule.HOURLY: 3600, rrule.MINUTELY: 60, rrule.SECONDLY: 1}[s.opt.Freq]
		n = (from.Unix()-base.Unix())/(unit*step) - 1
		if n > 0 {
			return time.Unix(base.Unix()+n*unit*step, 0).UTC()
		}
	}
	return s.dtstart
}

// ruleFirst returns the rule's first occurrence at or after from.
func (s *rruleSchedule) ruleFirst(from time.Time) (_ time.Time, _ bool) {
	// rrule-go has panicked on rules it accepted (BYDAY=10FR monthly);
	// Parse refuses those it knows of and runs each rule once, so this is
	// a last guard: no fire time rather than a crashed scheduler.
	defer func() { _ = recover() }()
	if s.never || (!s.opt.Until.IsZero() && from.After(s.opt.Until)) {
		return time.Time{}, false
	}
	// A new RRule each time: rrule-go's iterators write to their RRule,
	// and a Schedule is shared between goroutines.
	opt := s.opt
	if !s.counted {
		opt.Dtstart = s.rebase(from)
	}
	if n := s.noneFrom.Load(); n != 0 && from.Unix() >= n {
		return time.Time{}, false
	}
	r, err := rrule.NewRRule(opt)
	if err != nil {
		return time.Time{}, false
	}
	next := r.Iterator()
	for {
		t, ok := next()
		if !ok {
			// Nothing at or after from, so nothing after any later time.
			for n := s.noneFrom.Load(); n == 0 || from.Unix() < n; n = s.noneFrom.Load() {
				if s.noneFrom.CompareAndSwap(n, from.Unix()) {
					break
				}
			}
			return t, false
		}
		if !t.Before(from) {
			return t, true
		}
	}
}

// first implements civilSource: the rule's and RDATE's times, less
// EXDATE's.
func (s *rruleSchedule) first(from, limit time.Time) (time.Time, bool) {
	for {
		c, ok := s.ruleFirst(from)
		if i, _ := slices.BinarySearchFunc(s.rdates, from, time.Time.Compare); i < len(s.rdates) {
			if r := s.rdates[i]; !ok || r.Before(c) {
				c, ok = r, true
			}
		}
		if !ok || (!limit.IsZero() && !c.Before(limit)) {
			return time.Time{}, false
		}
		if !s.exdates[c] {
			return c, true
		}
		from = c.Add(time.Second)
	}
}

// String returns `rrule "TEXT" in ZONE`, TEXT being the lines as given.
func (s *rruleSchedule) String() string {
	return fmt.Sprintf("rrule %q in %s", s.text, s.loc)
}

// Next implements Schedule.
func (s *rruleSchedule) Next(after time.Time) time.Time {
	return nextWall(s, s.loc, s.byClock, after, time.Time{})
}
