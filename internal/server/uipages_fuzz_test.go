package server

import (
	"testing"
	"time"
)

// FuzzRunStatsQuery: the query of GET /stats/runs never panics, and what
// it accepts is a non-empty range of at most maxStatsBuckets buckets.
func FuzzRunStatsQuery(f *testing.F) {
	for _, s := range [][3]string{{"24h", "", "1h"}, {"2026-01-01", "2026-01-02T00:00", "15m"}, {"-1h", "", ""}, {"", "", "0s"}, {"1ns", "", "1s"}} {
		f.Add(s[0], s[1], s[2])
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, since, until, bucket string) {
		q := map[string]string{"since": since, "until": until, "bucket": bucket}
		p, err := runStatsQuery(func(k string) string { return q[k] }, now)
		if err != nil {
			return
		}
		if !p.Until.After(p.Since) || p.Bucket < time.Second || (p.Until.Sub(p.Since)+p.Bucket-1)/p.Bucket > maxStatsBuckets {
			t.Fatalf("accepted %+v for %q", p, q)
		}
	})
}

// FuzzParseQueryTime: a time parameter never panics and reads back in UTC.
func FuzzParseQueryTime(f *testing.F) {
	for _, s := range []string{"2026-03-01", "2026-03-01T12:30", "2026-03-01T12:30:00+02:00", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseQueryTime("created_from", s)
		if err == nil && tm.Location() != time.UTC {
			t.Fatalf("%q: %v not in UTC", s, tm)
		}
	})
}
