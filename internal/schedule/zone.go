package schedule

import "time"

// Wall-clock ("civil") times are time.Time values in UTC whose reading is
// the wall clock's: 2026-03-29T02:30:00Z stands for 02:30 on the wall in
// the schedule's zone, whether or not that instant exists there. Calendar
// arithmetic on them knows no daylight saving.

// civilOf returns t's wall-clock reading in loc, truncated to the second.
func civilOf(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

// civilSource lists a schedule's wall-clock matches.
type civilSource interface {
	// first returns the first wall-clock match c with from <= c < limit.
	first(from, limit time.Time) (time.Time, bool)
}

// period is a stretch of time with one UTC offset: [start, end), where a
// zero start or end is unbounded. prevOff is the offset before start
// (equal to off when start is unbounded).
type period struct {
	start, end   time.Time
	off, prevOff int // seconds east of UTC
}

func periodOf(t time.Time, loc *time.Location) period {
	t = t.In(loc)
	_, off := t.Zone()
	start, end := t.ZoneBounds()
	if !end.IsZero() && !end.After(t) {
		// Past the zone's table of transitions Go derives periods from
		// its rule per UTC year and, in leap years, reports an end a day
		// before the year's end (go1.26: ZoneBounds at 2040-12-31T12:00Z
		// in America/New_York ends at 2040-12-31T00:00Z). The offset is
		// right; the period goes on at least to the next UTC year.
		end = time.Date(t.UTC().Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	p := period{start: start, end: end, off: off, prevOff: off}
	if !start.IsZero() {
		_, p.prevOff = start.Add(-time.Second).In(loc).Zone()
	}
	return p
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

// nextWall returns the first fire time strictly after after of the
// wall-clock matches of src in loc, by Baton's daylight-saving rule:
//
//   - byClock false (the wall rule): each match fires once; a match in a
//     spring gap fires at the gap's end (the transition instant), and
//     several matches in one gap, or a match in the gap and one at its
//     end, fire once there; a match in an autumn overlap fires at its first
//     occurrence only.
//   - byClock true (schedules that fire every hour): a match fires at every
//     instant whose wall-clock reading it is: twice in an overlap, never in
//     a gap.
//
// It walks the zone's offset periods from after's: within one period wall
// time and real time move together, so a match c there is the instant
// c - offset. limit bounds the wall-clock search (zero: none).
func nextWall(src civilSource, loc *time.Location, byClock bool, after, limit time.Time) time.Time {
	p := periodOf(after, loc)
	from := civilOf(after, loc).Add(time.Second)
	if !byClock && p.prevOff > p.off && !p.start.IsZero() {
		// after is in or past an overlap: the overlap's first occurrences,
		// in the previous period, have fired already.
		if lo := p.start.Add(secs(p.prevOff)).UTC(); from.Before(lo) {
			from = lo
		}
	}
	c, ok := src.first(from, limit)
	searched := from // c is the first match at or after searched
	for ok {
		if p.end.IsZero() {
			return c.Add(-secs(p.off)).In(loc)
		}
		if hi := p.end.Add(secs(p.off)).UTC(); c.Before(hi) {
			return c.Add(-secs(p.off)).In(loc)
		}
		// c lies beyond this period's wall-clock end: go to the next one.
		q := periodOf(p.end, loc)
		// The next period starts where this one ends, whatever the zone's
		// bounds say (see periodOf); offsets equal on both sides are a
		// boundary without a transition.
		q.start, q.prevOff = p.end, p.off
		if !byClock && q.prevOff < q.off {
			// A spring gap: wall times [start+prevOff, start+off) do not
			// exist; a match there fires once, at the gap's end.
			if c.Before(q.start.Add(secs(q.off)).UTC()) {
				return q.start.In(loc)
			}
		}
		// Where this period's matches start on the wall: in an overlap the
		// wall rule skips what fired in the previous period, the clock
		// rule goes through it again.
		from = q.start.Add(secs(q.off)).UTC()
		if !byClock && q.prevOff > q.off {
			from = q.start.Add(secs(q.prevOff)).UTC()
		}
		if c.Before(from) || from.Before(searched) {
			c, ok = src.first(from, limit)
			searched = from
		}
		p = q
	}
	return time.Time{}
}
