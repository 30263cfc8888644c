package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseAge parses an age such as "30d", "12h", "90m" or any
// time.ParseDuration string; it must be positive.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("an age is required, such as 30d or 12h")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("invalid age %q: use a number of days (30d) or a duration (12h)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid age %q: use a number of days (30d) or a duration (12h)", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("age %q must be positive", s)
	}
	return d, nil
}
