package apitype

import "time"

// Limit is a tag concurrency limit (GET /api/v1/limits, `baton limits list
// --json`): at most Limit task runs carrying Tag are RUNNING at any
// instant, across every worker and server. Holders are the task runs
// holding its slots (oldest first); Waiting counts those in AWAITING_SLOT.
type Limit struct {
	Tag       string       `json:"tag"`
	Limit     int          `json:"limit"`
	Running   int          `json:"running"`
	Waiting   int          `json:"waiting"`
	Holders   []SlotHolder `json:"holders"`
	UpdatedBy string       `json:"updated_by"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// SlotHolder is a task run holding a slot of a limit: since when (its
// start), on which worker ("" for a task run of a local process), and
// until when its lease holds it.
type SlotHolder struct {
	TaskRunID  string     `json:"task_run_id"`
	RunID      string     `json:"run_id"`
	Key        string     `json:"key"`
	Task       string     `json:"task"`
	WorkerID   string     `json:"worker_id"`
	Since      time.Time  `json:"since"`
	LeaseUntil *time.Time `json:"lease_until"`
}

// SetLimitRequest is the body of PUT /api/v1/limits/{tag}.
type SetLimitRequest struct {
	// Limit is the number of slots, 0 or more (required).
	Limit *int `json:"limit"`
}
