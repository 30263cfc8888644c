package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustParse(t *testing.T, s Spec) Schedule {
	t.Helper()
	sch, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", s, err)
	}
	return sch
}

// The DST transitions of 2026:
//   - Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z).
//   - America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).
//   - Australia/Sydney: 2026-04-05 03:00 AEDT -> 02:00 AEST (16:00Z on the 4th); 2026-10-04 02:00 AEST -> 03:00 AEDT (16:00Z on the 3rd).
//   - Australia/Lord_Howe (30 minutes): 2026-04-05 02:00 +11 -> 01:30 +10:30 (15:00Z on the 4th); 2026-10-04 02:00 +10:30 -> 02:30 +11 (15:30Z on the 3rd).
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  Spec
		after string
		want  []string // UTC
	}{
		// Daily at 02:30: the spring gap fires once at 03:00, the autumn overlap once at its first occurrence.
		{"berlin daily 02:30 spring", Spec{Cron: "30 2 * * *", Timezone: "Europe/Berlin"}, "2026-03-28T00:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"berlin daily 02:30 autumn", Spec{Cron: "30 2 * * *", Timezone: "Europe/Berlin"}, "2026-10-24T00:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"new york daily 02:30 spring", Spec{Cron: "30 2 * * *", Timezone: "America/New_York"}, "2026-03-07T00:00:00Z",
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"new york daily 02:30 autumn (not repeated there)", Spec{Cron: "30 2 * * *", Timezone: "America/New_York"}, "2026-10-31T00:00:00Z",
			[]string{"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"}},
		{"new york daily 01:30 autumn", Spec{Cron: "30 1 * * *", Timezone: "America/New_York"}, "2026-10-31T00:00:00Z",
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"new york daily 01:30 asked from inside the overlap's second hour", Spec{Cron: "30 1 * * *", Timezone: "America/New_York"}, "2026-11-01T06:10:00Z",
			[]string{"2026-11-02T06:30:00Z"}},
		{"6 fields: berlin daily 02:30:00 spring", Spec{Cron: "0 30 2 * * *", Timezone: "Europe/Berlin"}, "2026-03-28T00:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"6 fields: seconds in the gap", Spec{Cron: "15,45 59 2 * * *", Timezone: "Europe/Berlin"}, "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:59:15Z"}},
		// A gap match and a match at the gap's end fire once.
		{"berlin 02:00, 02:30, 03:00, 03:30 spring", Spec{Cron: "0,30 2,3 * * *", Timezone: "Europe/Berlin"}, "2026-03-29T00:30:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:00:00Z"}},
		// Hourly and every 15 minutes: by the clock, every real hour, twice through the overlap.
		{"berlin hourly spring", Spec{Cron: "0 * * * *", Timezone: "Europe/Berlin"}, "2026-03-28T23:30:00Z",
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}},
		{"berlin hourly autumn", Spec{Cron: "0 * * * *", Timezone: "Europe/Berlin"}, "2026-10-24T23:30:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"}},
		{"berlin @hourly autumn", Spec{Cron: "@hourly", Timezone: "Europe/Berlin"}, "2026-10-24T23:30:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"}},
		{"new york hourly autumn", Spec{Cron: "0 * * * *", Timezone: "America/New_York"}, "2026-11-01T04:30:00Z",
			[]string{"2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"}},
		{"new york hourly spring", Spec{Cron: "0 * * * *", Timezone: "America/New_York"}, "2026-03-08T05:30:00Z",
			[]string{"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}},
		{"berlin hourly at :30 spring skips the wall time the clock skips", Spec{Cron: "30 * * * *", Timezone: "Europe/Berlin"}, "2026-03-29T00:00:00Z",
			[]string{"2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"}},
		{"new york every 15 minutes spring", Spec{Cron: "*/15 * * * *", Timezone: "America/New_York"}, "2026-03-08T06:40:00Z",
			[]string{"2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z"}},
		{"new york every 15 minutes autumn", Spec{Cron: "*/15 * * * *", Timezone: "America/New_York"}, "2026-11-01T05:40:00Z",
			[]string{"2026-11-01T05:45:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:15:00Z", "2026-11-01T06:30:00Z"}},
		{"berlin every 15 minutes autumn", Spec{Cron: "*/15 * * * *", Timezone: "Europe/Berlin"}, "2026-10-25T00:40:00Z",
			[]string{"2026-10-25T00:45:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z"}},
		// RRULE: FREQ=DAILY follows the wall rule, FREQ=HOURLY and finer the clock.
		{"rrule berlin daily 02:30 spring", Spec{RRule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", Timezone: "Europe/Berlin"}, "2026-03-28T00:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"rrule berlin daily 02:30 autumn", Spec{RRule: "RRULE:FREQ=DAILY;BYHOUR=2;BYMINUTE=30", Timezone: "Europe/Berlin"}, "2026-10-24T00:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"rrule new york daily 02:30 spring", Spec{RRule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", Timezone: "America/New_York"}, "2026-03-07T00:00:00Z",
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"rrule new york daily 01:30 autumn", Spec{RRule: "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", Timezone: "America/New_York"}, "2026-10-31T00:00:00Z",
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"rrule berlin hourly autumn", Spec{RRule: "FREQ=HOURLY", Timezone: "Europe/Berlin"}, "2026-10-24T23:30:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"}},
		{"rrule berlin hourly spring", Spec{RRule: "FREQ=HOURLY", Timezone: "Europe/Berlin"}, "2026-03-28T23:30:00Z",
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}},
		{"rrule new york every 30 minutes autumn", Spec{RRule: "FREQ=MINUTELY;INTERVAL=30", Timezone: "America/New_York"}, "2026-11-01T05:10:00Z",
			[]string{"2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"}},
		{"rrule hourly restricted to one hour follows the wall rule", Spec{RRule: "FREQ=HOURLY;BYHOUR=2;BYMINUTE=30", Timezone: "Europe/Berlin"}, "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		// Southern hemisphere, and a 30-minute shift.
		{"sydney daily 02:30 spring", Spec{Cron: "30 2 * * *", Timezone: "Australia/Sydney"}, "2026-10-02T12:00:00Z",
			[]string{"2026-10-02T16:30:00Z", "2026-10-03T16:00:00Z", "2026-10-04T15:30:00Z"}},
		{"sydney daily 02:30 autumn", Spec{Cron: "30 2 * * *", Timezone: "Australia/Sydney"}, "2026-04-03T12:00:00Z",
			[]string{"2026-04-03T15:30:00Z", "2026-04-04T15:30:00Z", "2026-04-05T16:30:00Z"}},
		{"sydney hourly autumn", Spec{Cron: "0 * * * *", Timezone: "Australia/Sydney"}, "2026-04-04T15:10:00Z",
			[]string{"2026-04-04T16:00:00Z", "2026-04-04T17:00:00Z"}},
		{"lord howe daily 02:15 spring (30-minute gap)", Spec{Cron: "15 2 * * *", Timezone: "Australia/Lord_Howe"}, "2026-10-03T00:00:00Z",
			[]string{"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}},
		{"lord howe daily 01:45 autumn (30-minute overlap)", Spec{Cron: "45 1 * * *", Timezone: "Australia/Lord_Howe"}, "2026-04-04T00:00:00Z",
			[]string{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"}},
		{"lord howe every 15 minutes autumn", Spec{Cron: "*/15 * * * *", Timezone: "Australia/Lord_Howe"}, "2026-04-04T14:40:00Z",
			[]string{"2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z", "2026-04-04T15:15:00Z", "2026-04-04T15:30:00Z"}},
		// Intervals are elapsed time.
		{"interval 1h anchored at :30 through the berlin overlap", Spec{Interval: time.Hour, Anchor: utc("2026-01-01T00:30:00Z")}, "2026-10-25T00:40:00Z",
			[]string{"2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"}},
		{"interval 90m from the epoch", Spec{Interval: 90 * time.Minute}, "2026-03-08T06:00:00Z",
			[]string{"2026-03-08T06:00:00Z", "2026-03-08T07:30:00Z"}[1:]},
		{"interval before its anchor", Spec{Interval: 24 * time.Hour, Anchor: utc("2030-01-01T05:00:00Z")}, "2026-03-08T06:00:00Z",
			[]string{"2026-03-09T05:00:00Z", "2026-03-10T05:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustParse(t, tt.spec)
			got := NextN(s, utc(tt.after), len(tt.want))
			if len(got) != len(tt.want) {
				t.Fatalf("%s: got %v, want %v", s, got, tt.want)
			}
			for i, w := range tt.want {
				if !got[i].Equal(utc(w)) {
					t.Errorf("%s: fire %d after %s = %s (%s), want %s", s, i, tt.after, got[i].UTC().Format(time.RFC3339), got[i].Format(time.RFC3339), w)
				}
			}
		})
	}
}

func TestIntervalsAreExact(t *testing.T) {
	t.Parallel()
	s := mustParse(t, Spec{Interval: 7 * time.Second, Anchor: utc("2026-01-01T00:00:03Z")})
	for _, tt := range []struct{ after, want string }{
		{"2026-01-01T00:00:03Z", "2026-01-01T00:00:10Z"},
		{"2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"},
		{"2026-01-01T00:00:00Z", "2026-01-01T00:00:03Z"},
		{"2025-12-31T23:59:59Z", "2026-01-01T00:00:03Z"},
		{"2025-12-31T23:59:55Z", "2025-12-31T23:59:56Z"},
	} {
		if got := s.Next(utc(tt.after)); !got.Equal(utc(tt.want)) {
			t.Errorf("Next(%s) = %s, want %s", tt.after, got, tt.want)
		}
	}
	// Centuries away from the anchor still land on the grid.
	far := mustParse(t, Spec{Interval: time.Hour, Anchor: utc("1700-01-01T00:30:00Z")})
	if got := far.Next(utc("2026-05-01T10:00:00Z")); !got.Equal(utc("2026-05-01T10:30:00Z")) {
		t.Errorf("far anchor: Next = %s", got)
	}
}

func TestMacros(t *testing.T) {
	t.Parallel()
	after := "2026-03-28T12:00:00Z" // a Saturday
	tests := []struct{ cron, want string }{
		{"@yearly", "2026-12-31T23:00:00Z"},
		{"@annually", "2026-12-31T23:00:00Z"},
		{"@monthly", "2026-03-31T22:00:00Z"},
		{"@weekly", "2026-03-28T23:00:00Z"}, // Sunday 00:00 CET
		{"@daily", "2026-03-28T23:00:00Z"},
		{"@midnight", "2026-03-28T23:00:00Z"},
		{"@hourly", "2026-03-28T13:00:00Z"},
	}
	for _, tt := range tests {
		s := mustParse(t, Spec{Cron: tt.cron, Timezone: "Europe/Berlin"})
		if got := s.Next(utc(after)); !got.Equal(utc(tt.want)) {
			t.Errorf("%s: Next = %s, want %s", s, got.UTC(), tt.want)
		}
	}
}

func TestRRuleEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  Spec
		after string
		want  []string
		open  bool // the rule goes on: check only the first fire times
	}{
		{"count through the gap", Spec{RRule: "DTSTART;TZID=Europe/Berlin:20260327T023000\nRRULE:FREQ=DAILY;COUNT=3"}, "2026-01-01T00:00:00Z",
			[]string{"2026-03-27T01:30:00Z", "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z"}, false},
		{"count asked after its end", Spec{RRule: "DTSTART;TZID=Europe/Berlin:20260327T023000\nRRULE:FREQ=DAILY;COUNT=3"}, "2026-03-29T01:00:00Z", nil, false},
		{"until", Spec{RRule: "FREQ=DAILY;BYHOUR=9;UNTIL=20260103T090000Z"}, "2026-01-01T10:00:00Z",
			[]string{"2026-01-02T09:00:00Z", "2026-01-03T09:00:00Z"}, false},
		{"local until in the zone", Spec{RRule: "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8;UNTIL=20260112T080000", Timezone: "America/New_York"}, "2026-01-01T00:00:00Z",
			[]string{"2026-01-05T13:00:00Z", "2026-01-12T13:00:00Z"}, false},
		{"exdate and rdate", Spec{RRule: "DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY;COUNT=5\nEXDATE:20260102T090000Z\nRDATE:20260103T120000Z"}, "2025-12-31T00:00:00Z",
			[]string{"2026-01-01T09:00:00Z", "2026-01-03T09:00:00Z", "2026-01-03T12:00:00Z", "2026-01-04T09:00:00Z", "2026-01-05T09:00:00Z"}, false},
		{"dtstart in utc read in the zone", Spec{RRule: "DTSTART:20260105T073000Z\nRRULE:FREQ=WEEKLY;COUNT=2", Timezone: "Europe/Berlin"}, "2026-01-01T00:00:00Z",
			[]string{"2026-01-05T07:30:00Z", "2026-01-12T07:30:00Z"}, false},
		{"monthly last friday", Spec{RRule: "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17", Timezone: "Europe/Berlin"}, "2026-01-01T00:00:00Z",
			[]string{"2026-01-30T16:00:00Z", "2026-02-27T16:00:00Z", "2026-03-27T16:00:00Z", "2026-04-24T15:00:00Z"}, true},
		{"every other week keeps its phase far from dtstart", Spec{RRule: "DTSTART:20010101T060000Z\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"}, "2026-01-01T00:00:00Z",
			// 2001-01-01 is a Monday; 2026-01-05 is 1305 weeks later (odd), 2026-01-12 is 1306 (even).
			[]string{"2026-01-12T06:00:00Z", "2026-01-26T06:00:00Z"}, true},
		{"bysetpos: last workday of the month", Spec{RRule: "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=18"}, "2026-01-01T00:00:00Z",
			[]string{"2026-01-30T18:00:00Z", "2026-02-27T18:00:00Z", "2026-03-31T18:00:00Z"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustParse(t, tt.spec)
			n := len(tt.want) + 3
			if tt.open {
				n = len(tt.want)
			}
			got := NextN(s, utc(tt.after), n)
			if len(got) != len(tt.want) {
				t.Fatalf("%s: got %v, want %v", s, got, tt.want)
			}
			for i, w := range tt.want {
				if !got[i].Equal(utc(w)) {
					t.Errorf("%s: fire %d = %s, want %s", s, i, got[i].UTC(), w)
				}
			}
			if tt.open {
				return
			}
			last := utc(tt.after)
			if len(got) > 0 {
				last = got[len(got)-1]
			}
			if n := s.Next(last); !n.IsZero() {
				t.Errorf("after the end: Next = %s, want the zero time", n)
			}
		})
	}
}

func TestNeverFires(t *testing.T) {
	t.Parallel()
	for _, spec := range []Spec{
		{Cron: "0 0 30 2 *"},
		{Cron: "0 0 31 4,6,9,11 *", Timezone: "Europe/Berlin"},
		{RRule: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"},
		{RRule: "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", Timezone: "America/New_York"},
		{RRule: "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=31"},
	} {
		s := mustParse(t, spec)
		start := time.Now()
		if got := s.Next(utc("2026-01-01T00:00:00Z")); !got.IsZero() {
			t.Errorf("%s: Next = %s, want the zero time", s, got)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: Next took %s", s, d)
		}
	}
	// February 29 does fire, in leap years.
	s := mustParse(t, Spec{Cron: "0 0 29 2 *"})
	if got := s.Next(utc("2026-01-01T00:00:00Z")); !got.Equal(utc("2028-02-29T00:00:00Z")) {
		t.Errorf("Feb 29: Next = %s", got)
	}
	if got := s.Next(utc("2096-03-01T00:00:00Z")); !got.Equal(utc("2104-02-29T00:00:00Z")) {
		t.Errorf("Feb 29 across 2100: Next = %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  Spec
		field string
		msg   string // a part of the message
	}{
		{"nothing", Spec{}, "schedule", "set exactly one of cron, interval or rrule"},
		{"several", Spec{Cron: "* * * * *", Interval: time.Hour}, "schedule", "only one"},
		{"cron and rrule", Spec{Cron: "* * * * *", RRule: "FREQ=DAILY"}, "schedule", "only one"},
		{"minute out of range", Spec{Cron: "61 * * * *"}, "cron", `invalid cron "61 * * * *": minute 61 is out of range 0-59`},
		{"hour out of range", Spec{Cron: "0 24 * * *"}, "cron", "hour 24 is out of range 0-23"},
		{"day of month 0", Spec{Cron: "0 0 0 * *"}, "cron", "day-of-month 0 is out of range 1-31"},
		{"month 13", Spec{Cron: "0 0 1 13 *"}, "cron", "month 13 is out of range 1-12"},
		{"weekday 7", Spec{Cron: "0 0 * * 7"}, "cron", "day-of-week 7 is out of range 0-6 (0 is Sunday)"},
		{"second out of range", Spec{Cron: "60 0 0 * * *"}, "cron", "second 60 is out of range 0-59"},
		{"bad name", Spec{Cron: "0 0 * foo *"}, "cron", `month "foo" is not a number or a name`},
		{"backwards range", Spec{Cron: "0 5-2 * * *"}, "cron", "hour range 5-2 runs backwards"},
		{"zero step", Spec{Cron: "*/0 * * * *"}, "cron", "minute step 0 must be at least 1"},
		{"too few fields", Spec{Cron: "* * *"}, "cron", "expected 5 fields"},
		{"too many fields", Spec{Cron: "* * * * * * *"}, "cron", "found 7"},
		{"garbage", Spec{Cron: "every day"}, "cron", "expected 5 fields"},
		{"@every", Spec{Cron: "@every 1h"}, "cron", "use an interval"},
		{"unknown macro", Spec{Cron: "@sometimes"}, "cron", "unknown macro"},
		{"zone in the expression", Spec{Cron: "TZ=Europe/Berlin 0 3 * * *"}, "cron", "timezone field"},
		{"unknown timezone", Spec{Cron: "0 3 * * *", Timezone: "Mars/Base"}, "timezone", `unknown timezone "Mars/Base"`},
		{"Local", Spec{Cron: "0 3 * * *", Timezone: "Local"}, "timezone", "IANA"},
		{"rrule unknown timezone", Spec{RRule: "FREQ=DAILY", Timezone: "Mars/Base"}, "timezone", "Mars/Base"},
		{"interval unknown timezone", Spec{Interval: time.Hour, Timezone: "Mars/Base"}, "timezone", "Mars/Base"},
		{"negative interval", Spec{Interval: -time.Hour}, "interval", "must be positive"},
		{"sub-second interval", Spec{Interval: 500 * time.Millisecond}, "interval", "at least 1s"},
		{"anchor without interval", Spec{Cron: "0 3 * * *", Anchor: utc("2026-01-01T00:00:00Z")}, "anchor", "interval only"},
		{"rrule no freq", Spec{RRule: "BYHOUR=3"}, "rrule", "FREQ is required"},
		{"rrule no rule", Spec{RRule: "DTSTART:20260101T000000Z"}, "rrule", "no RRULE"},
		{"rrule bad freq", Spec{RRule: "FREQ=SOMETIMES"}, "rrule", `invalid rrule "RRULE:FREQ=SOMETIMES"`},
		{"rrule unknown property", Spec{RRule: "FREQ=DAILY;COLOR=RED"}, "rrule", "COLOR"},
		{"rrule byhour out of range", Spec{RRule: "FREQ=DAILY;BYHOUR=25"}, "rrule", "byhour must be between 0 and 23"},
		{"rrule zero interval", Spec{RRule: "FREQ=DAILY;INTERVAL=0"}, "rrule", "INTERVAL must be"},
		{"rrule count and until", Spec{RRule: "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"}, "rrule", "exclude each other"},
		{"rrule zero count", Spec{RRule: "FREQ=DAILY;COUNT=0"}, "rrule", "COUNT must be"},
		{"rrule unreachable hour", Spec{RRule: "FREQ=HOURLY;INTERVAL=24;BYHOUR=3"}, "rrule", "never reaches"},
		{"rrule sub-daily bysetpos", Spec{RRule: "FREQ=MINUTELY;BYSETPOS=2"}, "rrule", "BYSETPOS"},
		{"rrule exrule", Spec{RRule: "RRULE:FREQ=DAILY\nEXRULE:FREQ=WEEKLY"}, "rrule", "EXDATE"},
		{"rrule bad dtstart", Spec{RRule: "DTSTART:2026-01-01\nRRULE:FREQ=DAILY"}, "rrule", "DTSTART"},
		{"rrule dtstart zone conflict", Spec{RRule: "DTSTART;TZID=Europe/Paris:20260101T000000\nRRULE:FREQ=DAILY", Timezone: "Europe/Berlin"}, "rrule", "differs"},
		{"rrule unknown tzid", Spec{RRule: "DTSTART;TZID=Mars/Base:20260101T000000\nRRULE:FREQ=DAILY"}, "rrule", "Mars/Base"},
		{"rrule two rules", Spec{RRule: "RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY"}, "rrule", "more than one RRULE"},
		{"rrule unknown line", Spec{RRule: "RRULE:FREQ=DAILY\nSUMMARY:hello"}, "rrule", "unknown line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tt.spec)
			if err == nil {
				t.Fatalf("Parse(%+v) = %s, want an error", tt.spec, s)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			if fe.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", fe.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestParseInterval(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"90s", 90 * time.Second}, {"1h30m", 90 * time.Minute}, {"1d", 24 * time.Hour},
		{"1d12h", 36 * time.Hour}, {"0.5d", 12 * time.Hour}, {" 15m ", 15 * time.Minute},
	} {
		got, err := ParseInterval(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseInterval(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "0", "-1h", "500ms", "1x", "h", "1.2.3h", "10", "99999999999d"} {
		_, err := ParseInterval(in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "interval" {
			t.Errorf("ParseInterval(%q) error = %v, want a FieldError on interval", in, err)
		}
	}
	if d, err := ParseDuration("jitter", "0"); err != nil || d != 0 {
		t.Errorf(`ParseDuration("jitter", "0") = %s, %v`, d, err)
	}
	if _, err := ParseDuration("jitter", "-5m"); err == nil || !strings.Contains(err.Error(), `invalid jitter "-5m"`) {
		t.Errorf(`ParseDuration("jitter", "-5m") error = %v`, err)
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	at := utc("2026-03-29T01:00:00Z")
	if Jitter("a", at, 0) != 0 || Jitter("a", at, -time.Second) != 0 {
		t.Error("Jitter with max <= 0 is not 0")
	}
	seen := map[time.Duration]bool{}
	for i := range 200 {
		key := "deployment-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		d := Jitter(key, at, time.Minute)
		if d < 0 || d >= time.Minute {
			t.Fatalf("Jitter(%q) = %s, out of [0, 1m)", key, d)
		}
		if d != Jitter(key, at, time.Minute) {
			t.Fatalf("Jitter(%q) is not deterministic", key)
		}
		seen[d] = true
	}
	if len(seen) < 150 {
		t.Errorf("200 keys gave only %d distinct delays", len(seen))
	}
	if Jitter("k", at, time.Hour) == Jitter("k", at.Add(time.Hour), time.Hour) && Jitter("k", at, time.Hour) == Jitter("k", at.Add(2*time.Hour), time.Hour) {
		t.Error("Jitter ignores the time")
	}
}

func TestStringAndHelpers(t *testing.T) {
	t.Parallel()
	s := mustParse(t, Spec{Cron: "  0   3 * * * ", Timezone: "Europe/Berlin"})
	if got, want := s.String(), `cron "0 3 * * *" in Europe/Berlin`; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got := mustParse(t, Spec{Interval: time.Hour}).String(); got != "every 1h0m0s from 1970-01-01T00:00:00Z" {
		t.Errorf("String = %q", got)
	}
	if got := mustParse(t, Spec{RRule: "FREQ=DAILY"}).String(); got != `rrule "RRULE:FREQ=DAILY" in UTC` {
		t.Errorf("String = %q", got)
	}
	h := mustParse(t, Spec{Cron: "0 * * * *"})
	got := Between(h, utc("2026-01-01T00:00:00Z"), utc("2026-01-01T05:00:00Z"), 0)
	if len(got) != 5 || !got[4].Equal(utc("2026-01-01T05:00:00Z")) {
		t.Errorf("Between (from, to] = %v", got)
	}
	if got := Between(h, utc("2026-01-01T00:00:00Z"), utc("2026-01-02T00:00:00Z"), 3); len(got) != 3 {
		t.Errorf("Between with max 3 gave %d", len(got))
	}
	if got := NextN(h, utc("2026-01-01T00:00:00Z"), 0); len(got) != 0 {
		t.Errorf("NextN 0 gave %d", len(got))
	}
}

// cronMatches reports whether the wall-clock time c matches spec's fields,
// directly from the bits (the oracle for TestCronAgainstBruteForce).
func cronMatches(spec *cron.SpecSchedule, c time.Time) bool {
	bit := func(b uint64, v int) bool { return b&(1<<uint(v)) != 0 }
	dom, dow := bit(spec.Dom, c.Day()), bit(spec.Dow, int(c.Weekday()))
	day := dom || dow
	if spec.Dom&(1<<63) != 0 || spec.Dow&(1<<63) != 0 {
		day = dom && dow
	}
	return day && bit(spec.Month, int(c.Month())) && bit(spec.Hour, c.Hour()) && bit(spec.Minute, c.Minute()) && bit(spec.Second, c.Second())
}

// TestCronAgainstBruteForce checks a year of fire times in three zones
// against the rule computed minute by minute: by the clock, the instants
// whose wall reading matches; by the wall rule, each matching wall minute
// once (a gap's at the gap's end, an overlap's at its first occurrence).
func TestCronAgainstBruteForce(t *testing.T) {
	t.Parallel()
	exprs := []string{"30 2 * * *", "30 1 * * *", "0 * * * *", "*/15 * * * *", "45 */2 * * *", "0,30 1-3 * * 0", "30 * * * *", "0 0 1 * *", "*/20 1,2 * 3,10,11 *"}
	zones := []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe"}
	for _, year := range []string{"2026", "2040"} {
		for _, zone := range zones {
			for _, expr := range exprs {
				t.Run(year+" "+zone+" "+expr, func(t *testing.T) {
					t.Parallel()
					s := mustParse(t, Spec{Cron: expr, Timezone: zone}).(*cronSchedule)
					loc := s.loc
					from, to := utc(year+"-01-01T00:00:00Z"), utc(year+"-12-31T00:00:00Z").AddDate(0, 0, 1)
					var want []time.Time
					if s.byClock {
						for i := from.Add(time.Minute); !i.After(to); i = i.Add(time.Minute) {
							if cronMatches(s.spec, civilOf(i, loc)) {
								want = append(want, i)
							}
						}
					} else {
						seen := map[int64]bool{}
						for c := civilOf(from, loc).Add(-24 * time.Hour); c.Before(civilOf(to, loc).Add(24 * time.Hour)); c = c.Add(time.Minute) {
							if !cronMatches(s.spec, c) {
								continue
							}
							// The instant by the wall rule: the first whose reading is c, else (a gap) the first after.
							inst := time.Date(c.Year(), c.Month(), c.Day(), c.Hour(), c.Minute(), 0, 0, loc)
							var first time.Time
							for d := -3 * time.Hour; d <= 3*time.Hour; d += time.Minute {
								if j := inst.Add(d); civilOf(j, loc).Equal(c) {
									first = j
									break
								}
							}
							if first.IsZero() { // a gap: the first instant whose reading is past c
								for d := -3 * time.Hour; d <= 3*time.Hour; d += time.Minute {
									if j := inst.Add(d); civilOf(j, loc).After(c) && civilOf(j.Add(-time.Minute), loc).Before(c) {
										first = j.Truncate(time.Minute)
										break
									}
								}
							}
							if first.After(from) && !first.After(to) && !seen[first.Unix()] {
								seen[first.Unix()] = true
								want = append(want, first)
							}
						}
					}
					got := Between(s, from, to, 0)
					if len(got) != len(want) {
						t.Fatalf("%s: %d fire times in 2026, want %d", s, len(got), len(want))
					}
					for i := range want {
						if !got[i].Equal(want[i]) {
							t.Fatalf("%s: fire %d = %s, want %s", s, i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}

// TestStrictlyIncreasing walks a year of many schedules and checks every
// fire time is after the previous one and agrees with Next from any point
// in between.
func TestStrictlyIncreasing(t *testing.T) {
	t.Parallel()
	specs := []Spec{
		{Cron: "*/7 * * * *", Timezone: "Australia/Lord_Howe"},
		{Cron: "15 2 * * *", Timezone: "America/New_York"},
		{RRule: "FREQ=MINUTELY;INTERVAL=45", Timezone: "Europe/Berlin"},
		{RRule: "FREQ=DAILY;BYHOUR=1,2,3;BYMINUTE=0,30", Timezone: "America/New_York"},
		{RRule: "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30", Timezone: "Europe/Berlin"},
		{Interval: 97 * time.Minute, Anchor: utc("2026-02-01T00:00:00Z")},
	}
	for _, spec := range specs {
		s := mustParse(t, spec)
		prev := utc("2026-01-01T00:00:00Z")
		for i := 0; i < 20000; i++ {
			n := s.Next(prev)
			if n.IsZero() {
				break
			}
			if !n.After(prev) {
				t.Fatalf("%s: Next(%s) = %s, not after", s, prev, n)
			}
			if mid := prev.Add(n.Sub(prev) / 2); mid.After(prev) && !s.Next(mid).Equal(n) {
				t.Fatalf("%s: Next(%s) = %s, but Next(%s) = %s", s, prev, n, mid, s.Next(mid))
			}
			prev = n
		}
	}
}

func BenchmarkNextCron(b *testing.B) {
	for _, bc := range []struct{ name, expr, zone string }{
		{"every-minute", "* * * * *", "Europe/Berlin"},
		{"nightly", "0 3 * * *", "Europe/Berlin"},
		{"monthly-weekday", "30 9 1-7 * 1", "America/New_York"},
		{"feb-30-never", "0 0 30 2 *", "UTC"},
	} {
		s, err := Parse(Spec{Cron: bc.expr, Timezone: bc.zone})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			t := utc("2026-10-24T12:00:00Z")
			for b.Loop() {
				n := s.Next(t)
				if n.IsZero() {
					n = t
				}
				t = n
				if t.Year() > 2030 {
					t = utc("2026-10-24T12:00:00Z")
				}
			}
		})
	}
}

func BenchmarkNextRRule(b *testing.B) {
	s, err := Parse(Spec{RRule: "FREQ=MINUTELY;INTERVAL=5", Timezone: "Europe/Berlin"})
	if err != nil {
		b.Fatal(err)
	}
	t := utc("2026-10-24T12:00:00Z")
	for b.Loop() {
		t = s.Next(t)
	}
}

// TestConcurrentNext calls Next on shared schedules from several
// goroutines (run with -race): a Schedule is immutable.
func TestConcurrentNext(t *testing.T) {
	t.Parallel()
	specs := []Spec{
		{Cron: "*/5 * * * *", Timezone: "Europe/Berlin"},
		{RRule: "DTSTART:20260101T000000Z\nRRULE:FREQ=HOURLY;COUNT=5000", Timezone: "America/New_York"},
		{RRule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=30\nEXDATE:20260329T023000", Timezone: "Europe/Berlin"},
		{Interval: time.Minute},
	}
	for _, spec := range specs {
		s := mustParse(t, spec)
		want := NextN(s, utc("2026-03-01T00:00:00Z"), 200)
		done := make(chan []time.Time)
		for range 4 {
			go func() { done <- NextN(s, utc("2026-03-01T00:00:00Z"), 200) }()
		}
		for range 4 {
			got := <-done
			if len(got) != len(want) {
				t.Fatalf("%s: %d fire times concurrently, %d alone", s, len(got), len(want))
			}
			for i := range got {
				if !got[i].Equal(want[i]) {
					t.Fatalf("%s: fire %d = %s concurrently, %s alone", s, i, got[i], want[i])
				}
			}
		}
	}
}

// TestRRuleImpossibleByPhase covers rules that never fire only because of
// their INTERVAL's phase (every 14 days from a Monday, on Tuesdays): the
// first Next searches, the next ones answer at once.
func TestRRuleImpossibleByPhase(t *testing.T) {
	t.Parallel()
	s := mustParse(t, Spec{RRule: "DTSTART:20010101T000000Z\nRRULE:FREQ=DAILY;INTERVAL=14;BYDAY=TU"})
	if got := s.Next(utc("2026-01-01T00:00:00Z")); !got.IsZero() {
		t.Fatalf("Next = %s, want the zero time", got)
	}
	start := time.Now()
	for i := range 100 {
		if got := s.Next(utc("2026-01-01T00:00:00Z").Add(time.Duration(i) * time.Minute)); !got.IsZero() {
			t.Fatalf("Next = %s, want the zero time", got)
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("100 Next calls took %s", d)
	}
	// Still a rule that fires when its phase allows: every 14 days from a Tuesday.
	ok := mustParse(t, Spec{RRule: "DTSTART:20010102T000000Z\nRRULE:FREQ=DAILY;INTERVAL=14;BYDAY=TU"})
	if got := ok.Next(utc("2026-01-01T00:00:00Z")); got.IsZero() || got.Weekday() != time.Tuesday {
		t.Errorf("Next = %s, want a Tuesday", got)
	}
}
