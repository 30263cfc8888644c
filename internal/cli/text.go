package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/batonhq/baton/internal/engine"
)

// WriteJSON prints v as indented JSON, without HTML escapes.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Time formats t in local time, second precision; "-" for zero.
func Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// TimeMillis formats t in local time, millisecond precision.
func TimeMillis(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}

// Deref returns *t, or the zero time for nil.
func Deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// Duration is end-start, or now-start while still running (with a "+");
// "-" before the start.
func Duration(start, end, now time.Time) string {
	if start.IsZero() {
		return "-"
	}
	running := end.IsZero()
	if running {
		end = now
	}
	d := end.Sub(start)
	if d < 0 {
		d = 0
	}
	var s string
	switch {
	case d < time.Second:
		s = d.Round(time.Millisecond).String()
	case d < time.Minute:
		s = d.Round(100 * time.Millisecond).String()
	default:
		s = d.Round(time.Second).String()
	}
	if running {
		s += "+"
	}
	return s
}

// OneLine replaces line breaks and tabs, which would break the tables.
func OneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
}

// Truncate shortens s to at most max runes, ending with "…" when cut.
func Truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// PrintTaskFailure prints each failed task attempt on env.Stderr, one line
// each (see TaskFailureLine): for run, retry and task, and for workers.
func PrintTaskFailure(env *Env) func(engine.TaskFailure) {
	return func(f engine.TaskFailure) { fmt.Fprintln(env.Stderr, TaskFailureLine(f)) }
}

// TaskFailureLine is the console line of a failed task attempt:
//
//	baton: task fetch/0 attempt 1 failed: connection refused; retrying in 1s
//	baton: task load/2 FAILED after 3 attempts: disk full
func TaskFailureLine(f engine.TaskFailure) string {
	msg := OneLine(f.Err.Error())
	if !f.Final {
		return fmt.Sprintf("baton: task %s attempt %d failed: %s; retrying in %s", f.Key, f.Attempt, msg, delay(f.RetryIn))
	}
	switch f.Attempt {
	case 0:
		return fmt.Sprintf("baton: task %s %s: %s", f.Key, f.State, msg)
	case 1:
		return fmt.Sprintf("baton: task %s %s after 1 attempt: %s", f.Key, f.State, msg)
	}
	return fmt.Sprintf("baton: task %s %s after %d attempts: %s", f.Key, f.State, f.Attempt, msg)
}

// delay rounds a retry delay for people: 1s, 1.2s, 250ms.
func delay(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}
