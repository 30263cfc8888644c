package schedule

import (
	"errors"
	"testing"
	"time"
)

var fuzzZones = []string{"", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"}

// checkSteps parses spec and, when it parses, takes a few Next steps from
// around the 2026 transitions: each strictly after the last, each in
// bounded time.
func checkSteps(t *testing.T, spec Spec, start int64) {
	s, err := Parse(spec)
	if err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("Parse(%+v): %T %v is not a *FieldError", spec, err, err)
		}
		if fe.Error() == "" || fe.Field == "" {
			t.Fatalf("Parse(%+v): empty error %+v", spec, fe)
		}
		return
	}
	_ = s.String()
	base := utc("2026-03-01T00:00:00Z")
	prev := base.Add(time.Duration(start%(300*86400)) * time.Second)
	for range 5 {
		begin := time.Now()
		n := s.Next(prev)
		if d := time.Since(begin); d > 5*time.Second {
			t.Fatalf("%s: Next(%s) took %s", s, prev, d)
		}
		if n.IsZero() {
			return
		}
		if !n.After(prev) {
			t.Fatalf("%s: Next(%s) = %s, not after", s, prev, n)
		}
		prev = n
	}
}

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "30 2 * * *", "0 30 2 * * *", "*/15 * * * *", "0 0 30 2 *", "@hourly", "@every 1h",
		"61 * * * *", "0 5-2 * * *", "1,2,3-5/2 */3 1-31/7 jan-dec/2 mon-fri", "TZ=", "TZ=Europe/Berlin 0 3 * * *", "0 0 * * ?", "-1 * * * *", "*/0 * * * *"} {
		for i := range fuzzZones {
			f.Add(s, uint8(i), int64(i)*7919)
		}
	}
	f.Fuzz(func(t *testing.T, expr string, zone uint8, start int64) {
		if start < 0 {
			start = -start
		}
		checkSteps(t, Spec{Cron: expr, Timezone: fuzzZones[int(zone)%len(fuzzZones)]}, start)
	})
}

func FuzzParseRRule(f *testing.F) {
	for _, s := range []string{"FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "RRULE:FREQ=HOURLY", "FREQ=MINUTELY;INTERVAL=7",
		"DTSTART;TZID=Europe/Berlin:20260327T023000\nRRULE:FREQ=DAILY;COUNT=3", "FREQ=DAILY;BYHOUR=9;UNTIL=20260103T090000Z",
		"DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY;COUNT=5\nEXDATE:20260102T090000Z\nRDATE:20260103T120000Z",
		"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17", "FREQ=HOURLY;INTERVAL=24;BYHOUR=3",
		"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;WKST=SU", "FREQ=SECONDLY;BYSECOND=0,30",
		"FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH", "FREQ=YEARLY;BYEASTER=0", "FREQ=YEARLY;BYYEARDAY=-1,366"} {
		for i := range fuzzZones {
			f.Add(s, uint8(i), int64(i)*104729)
		}
	}
	f.Fuzz(func(t *testing.T, rule string, zone uint8, start int64) {
		if start < 0 {
			start = -start
		}
		checkSteps(t, Spec{RRule: rule, Timezone: fuzzZones[int(zone)%len(fuzzZones)]}, start)
	})
}

func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"90s", "1h30m", "1d", "1d12h", "0.5d", "500ms", "-1h", "0", "", "1x", "9223372036854775807ns", "99999999999d", ".d", "1e3d"} {
		f.Add(s, int64(len(s))*86399)
	}
	f.Fuzz(func(t *testing.T, in string, start int64) {
		d, err := ParseInterval(in)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "interval" {
				t.Fatalf("ParseInterval(%q): %v is not a FieldError on interval", in, err)
			}
			return
		}
		if d < time.Second {
			t.Fatalf("ParseInterval(%q) = %s, under 1s", in, d)
		}
		if start < 0 {
			start = -start
		}
		checkSteps(t, Spec{Interval: d, Anchor: utc("2026-01-01T00:00:00Z").Add(time.Duration(start % int64(time.Hour)))}, start)
	})
}
