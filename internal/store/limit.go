package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// TaskAwaitingSlot is the state of a distributed task run that carries tags
// (baton.Tags) and waits to start: only a claim that finds a free slot of
// every limited tag it carries starts it (then it is RUNNING and holds
// them). Task runs without tags wait PENDING instead.
const TaskAwaitingSlot TaskState = "AWAITING_SLOT"

// Waiting reports whether a distributed task run in state s waits for a
// worker to claim it (PENDING or AWAITING_SLOT).
func (s TaskState) Waiting() bool { return s == TaskPending || s == TaskAwaitingSlot }

// Limit is a concurrency limit of a tag: at most Max task runs carrying
// Tag are RUNNING at any instant, across every worker and server sharing
// the store. A slot is held by a RUNNING task run with the tag: it is free
// again in the transaction that moves the task run out of RUNNING (its
// completion, its cancellation, or the take-back when its worker's lease
// expires), so slots cannot leak.
type Limit struct {
	Tag       string
	Max       int
	UpdatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Holders are the task runs holding a slot, oldest start first (filled
	// by LimitList).
	Holders []SlotHolder
	// Waiting counts the task runs with the tag in AWAITING_SLOT (filled by
	// LimitList).
	Waiting int
}

// SlotHolder is a RUNNING task run holding a slot of a limit.
type SlotHolder struct {
	Ref        TaskRunRef
	Task       string
	WorkerID   string
	Since      time.Time // when it started (its claim)
	LeaseUntil time.Time
}

// LimitSetParams sets the limit of Tag to Max (creating it). Max must be
// at least 0 (0 lets nothing with the tag start). By is who set it.
type LimitSetParams struct {
	Tag string
	Max int
	By  string
	At  time.Time // zero: now
}

// MaxTags bounds the tags of one task, and MaxTagBytes the length of one.
const (
	MaxTags     = 32
	MaxTagBytes = 200
)

// CheckTag validates a tag name given by a user or a task definition: not
// empty, at most MaxTagBytes bytes, valid UTF-8 without control
// characters. field names it in the error ("tag").
func CheckTag(field, tag string) error {
	if tag == "" {
		return fmt.Errorf("%s: must not be empty", field)
	}
	if len(tag) > MaxTagBytes {
		return fmt.Errorf("%s: %q is longer than %d bytes", field, strings.ToValidUTF8(tag[:20], "")+"…", MaxTagBytes)
	}
	if err := CheckIdentifier(field, tag); err != nil {
		return err
	}
	for _, r := range tag {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: %q holds a control character", field, tag)
		}
	}
	return nil
}

// CheckLimit validates a limit's tag and maximum, naming the field in the
// error: the same check for the CLI and the API.
func CheckLimit(tag string, max int) error {
	if err := CheckTag("tag", tag); err != nil {
		return err
	}
	return CheckLimitMax(max)
}

// CheckLimitMax validates the number of slots of a limit: 0 or more.
func CheckLimitMax(max int) error {
	if max < 0 {
		return fmt.Errorf("limit: must be 0 or more, got %d", max)
	}
	return nil
}

// NormalizeTags returns tags sorted, without duplicates, or an error naming
// the bad one.
func NormalizeTags(tags []string) ([]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxTags {
		return nil, fmt.Errorf("tags: at most %d, got %d", MaxTags, len(out))
	}
	for _, t := range out {
		if err := CheckTag("tag", t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EncTags is the column value of a task run's tags: a JSON array, or ""
// for none.
func EncTags(tags []string) string {
	if len(tags) == 0 {
		return ""
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

// DecTags reads the column value of a task run's tags.
func DecTags(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var tags []string
	if err := json.Unmarshal([]byte(s), &tags); err != nil {
		return nil, fmt.Errorf("tags %q: %w", s, err)
	}
	return tags, nil
}

// WaitingState is the state a distributed task run waits to be claimed in:
// AWAITING_SLOT when it carries tags, PENDING otherwise.
func WaitingState(tags []string) TaskState {
	if len(tags) > 0 {
		return TaskAwaitingSlot
	}
	return TaskPending
}

// SlotsFree reports how many of limit l's slots are free.
func (l Limit) SlotsFree() int { return max(0, l.Max-len(l.Holders)) }

// DescribeHolders says who holds a limit's slots, for a waiting reason:
// "task run X of run R on worker W since T, ..." (at most n named).
func (l Limit) DescribeHolders(n int) string {
	var parts []string
	for i, h := range l.Holders {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(l.Holders)-n))
			break
		}
		w := h.WorkerID
		if w == "" {
			w = "(local)"
		}
		parts = append(parts, fmt.Sprintf("task run %s (%s) of run %s on worker %s since %s", h.Ref.ID, h.Task,
			h.Ref.RunID, w, h.Since.UTC().Format(time.RFC3339)))
	}
	return strings.Join(parts, ", ")
}

// LocalHolderPrefix starts the holder of a slot taken by a task run
// executed in a user's process rather than claimed by a worker (see
// SlotAcquireParams): "local:<host>:<pid>".
const LocalHolderPrefix = "local:"

// SlotAcquireParams takes, for a task run executed in the process that
// runs its flow (a local run: TaskRun.Queue empty), a slot of every limited
// tag of TaskRun.Tags, as a claim would for a distributed one. The slot is
// the task run itself: SlotAcquire writes TaskRun (state RUNNING, WorkerID
// the holder, LocalHolderPrefix..., LeaseUntil its lease) only when every
// limited tag has a free slot. A local task run holds its slots while it
// is RUNNING and its lease has not expired: the process renews the lease
// (SlotRenew) while the task runs, and when the process dies (kill -9) the
// slots are free once the lease expires, whatever its row still says. Its
// end (any other state written) frees them at once. At zero means now.
type SlotAcquireParams struct {
	TaskRun TaskRun
	At      time.Time
}

// SlotRenewParams extends the lease of the slots of a local task run held
// by Holder to Until (never shortening it).
type SlotRenewParams struct {
	Ref    TaskRunRef
	Holder string
	Until  time.Time
}

// CheckSlotAcquire validates p.
func CheckSlotAcquire(p SlotAcquireParams) error {
	t := p.TaskRun
	switch {
	case t.Queue != "":
		return fmt.Errorf("slot of task run %s: a distributed task run (queue %q) takes its slots in a claim", t.ID, t.Queue)
	case t.State != TaskRunning:
		return fmt.Errorf("slot of task run %s: state %s, want RUNNING", t.ID, t.State)
	case !strings.HasPrefix(t.WorkerID, LocalHolderPrefix):
		return fmt.Errorf("slot of task run %s: holder %q does not start with %q", t.ID, t.WorkerID, LocalHolderPrefix)
	case t.LeaseUntil.IsZero():
		return fmt.Errorf("slot of task run %s: no lease", t.ID)
	}
	return nil
}
