package api

import (
	"fmt"
	"strings"
	"time"
)

// timeLayouts are the forms ParseTime accepts, in the order tried.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

// ParseTime reads a time given as the field what (`query parameter
// "created_from"` for the API, `--created-from` for the command line): an
// RFC 3339 time, or a time without zone ("2006-01-02T15:04:05",
// "2006-01-02T15:04", what an HTML datetime-local field sends) or a date,
// both in UTC. The error names what, so every surface refuses a time in
// the same words.
func ParseTime(what, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s must be a time (RFC 3339, \"2006-01-02T15:04\" or \"2006-01-02\", UTC without a zone), got %q", what, v)
}

// CheckTimeRange checks that to, when both are set, is after from; fromWhat
// and toWhat name the two fields as ParseTime's what does.
func CheckTimeRange(fromWhat, toWhat string, from, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return fmt.Errorf("%s (%s) must be after %s (%s)", toWhat, to.Format(time.RFC3339), fromWhat, from.Format(time.RFC3339))
	}
	return nil
}
