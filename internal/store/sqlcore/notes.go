package sqlcore

import (
	"strings"

	"github.com/batonhq/baton/internal/store"
)

// Notes collects the notifications of one write, without duplicates; a
// backend sends them when the write commits.
type Notes struct {
	List []store.Notification
	seen map[store.Notification]struct{}
}

// Add records a notification once.
func (ns *Notes) Add(kind, payload string) {
	n := store.Notification{Kind: kind, Payload: payload}
	if _, dup := ns.seen[n]; dup {
		return
	}
	if ns.seen == nil {
		ns.seen = map[store.Notification]struct{}{}
	}
	ns.seen[n] = struct{}{}
	ns.List = append(ns.List, n)
}

// AddRun records what writing run r announces: "runs" when it waits in a
// queue, "cancel" when it is being cancelled.
func (ns *Notes) AddRun(r *store.Run) {
	switch r.State {
	case store.RunScheduled:
		if r.Queue != "" {
			ns.Add("runs", r.Queue)
		}
	case store.RunCancelling:
		ns.Add("cancel", r.ID)
	}
}

// StatesString lists states for an error message: "A" or "one of A, B".
func StatesString(states []store.RunState) string {
	if len(states) == 1 {
		return string(states[0])
	}
	ss := make([]string, len(states))
	for i, st := range states {
		ss[i] = string(st)
	}
	return "one of " + strings.Join(ss, ", ")
}
