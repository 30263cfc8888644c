package apitype

import (
	"encoding/json"
	"time"
)

// ActorHeader is the request header that names who a request acts for
// (`baton --as NAME` sends it; without --as the baton command sends the OS
// user as USER@HOST). The server records the name in the histories of the
// runs the request changes with Verified false: the API does not
// authenticate callers. A request without it is recorded as "anonymous".
const ActorHeader = "X-Baton-Actor"

// HistoryEntry is one entry of a run's append-only history (GET
// /api/v1/runs/{id}/history, `baton runs history --json`): an action on the
// run by a person or by the system.
type HistoryEntry struct {
	// Seq orders the entries of the store; it is the cursor of the next
	// page (the after query parameter).
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is who acted: "system" for Baton itself, the OS user
	// (USER@HOST) of a command on the store, or the name a client gave.
	Actor string `json:"actor"`
	// Verified is false for a name that a client declared and nobody
	// checked (ActorHeader); true for the system and the OS user.
	Verified bool `json:"verified"`
	// Action is what happened: created, started, completed, failed,
	// crashed, cancel_requested, cancelled, retry_scheduled, retried,
	// rescheduled, parameters_edited, lease_lost, given_back, state_changed,
	// fallback (task runs moved to their task's fallback, baton.Fallback),
	// and those of later features.
	Action string `json:"action"`
	// Reason says why, in words.
	Reason string `json:"reason,omitempty"`
	// Payload holds the action's details (a JSON object; for state changes
	// from, to, attempt, cause, and the worker or queue), null when none.
	Payload json.RawMessage `json:"payload"`
}

// HistoryPage is GET /api/v1/runs/{id}/history: a page of entries oldest
// first and, when more follow, the cursor of the next page (NextAfter, the
// last entry's seq, to pass as after).
type HistoryPage struct {
	History   []HistoryEntry `json:"history"`
	NextAfter int64          `json:"next_after,omitempty"`
}

// HistoryQueryParams are the query parameters of GET
// /api/v1/runs/{id}/history: after (a seq; 0 or absent: from the start)
// and limit (1 to 10000; default 1000).
var HistoryQueryParams = []string{"after", "limit"}
