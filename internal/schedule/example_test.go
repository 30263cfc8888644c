package schedule_test

import (
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/schedule"
)

// A nightly schedule across the spring and autumn transitions of
// Europe/Berlin: 02:30 does not exist on 29 March (it fires at 03:00) and
// happens twice on 25 October (it fires at the first).
func ExampleParse() {
	s, err := schedule.Parse(schedule.Spec{Cron: "30 2 * * *", Timezone: "Europe/Berlin"})
	if err != nil {
		panic(err)
	}
	for _, day := range []string{"2026-03-28T12:00:00Z", "2026-10-24T12:00:00Z"} {
		after, _ := time.Parse(time.RFC3339, day)
		for _, t := range schedule.NextN(s, after, 2) {
			fmt.Println(t.Format(time.RFC3339))
		}
	}
	// Output:
	// 2026-03-29T03:00:00+02:00
	// 2026-03-30T02:30:00+02:00
	// 2026-10-25T02:30:00+02:00
	// 2026-10-26T02:30:00+01:00
}

// Hourly schedules follow the clock through the autumn overlap: every real
// hour, 02:00 twice.
func ExampleParse_hourly() {
	s, _ := schedule.Parse(schedule.Spec{Cron: "@hourly", Timezone: "Europe/Berlin"})
	after, _ := time.Parse(time.RFC3339, "2026-10-24T23:30:00Z")
	for _, t := range schedule.NextN(s, after, 3) {
		fmt.Println(t.Format(time.RFC3339))
	}
	// Output:
	// 2026-10-25T02:00:00+02:00
	// 2026-10-25T02:00:00+01:00
	// 2026-10-25T03:00:00+01:00
}

func ExampleParse_error() {
	_, err := schedule.Parse(schedule.Spec{Cron: "61 * * * *"})
	fmt.Println(err)
	_, err = schedule.Parse(schedule.Spec{Cron: "0 3 * * *", Timezone: "Mars/Base"})
	fmt.Println(err)
	// Output:
	// field "cron": invalid cron "61 * * * *": minute 61 is out of range 0-59
	// field "timezone": unknown timezone "Mars/Base": not an IANA time zone name (such as Europe/Berlin or America/New_York)
}
