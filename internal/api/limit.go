package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// Tag concurrency limits, the same on every surface: `baton limits` on the
// store and PUT/GET/DELETE /api/v1/limits on a server validate with
// store.CheckLimit (the same messages, naming the field) and answer the
// same documents.

// ParseLimit reads the N of `baton limits set TAG N`: an integer of 0 or
// more; the error names the field "limit".
func ParseLimit(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("limit: must be an integer of 0 or more, got %q", s)
	}
	if err := store.CheckLimitMax(n); err != nil {
		return 0, err
	}
	return n, nil
}

// SetLimit sets the limit of tag (a refusal is a *BadInputError naming the
// field).
func SetLimit(ctx context.Context, st store.Store, tag string, req apitype.SetLimitRequest, who store.Actor) (store.Limit, error) {
	if req.Limit == nil {
		return store.Limit{}, &BadInputError{Err: errors.New("limit: required (the number of slots, 0 or more)")}
	}
	if err := store.CheckLimit(tag, *req.Limit); err != nil {
		return store.Limit{}, &BadInputError{Err: err}
	}
	if _, err := st.LimitSet(ctx, store.LimitSetParams{Tag: tag, Max: *req.Limit, By: who.OrSystem().Name}); err != nil {
		return store.Limit{}, err
	}
	ls, err := st.LimitList(ctx, []string{tag})
	if err != nil {
		return store.Limit{}, err
	}
	if len(ls) != 1 {
		return store.Limit{}, fmt.Errorf("limit %s: %w", tag, store.ErrNotFound)
	}
	return ls[0], nil
}

// CheckTag validates a tag given by a user (a *BadInputError naming the
// field).
func CheckTag(tag string) error {
	if err := store.CheckTag("tag", tag); err != nil {
		return &BadInputError{Err: err}
	}
	return nil
}

// LimitJSON converts a limit.
func LimitJSON(l store.Limit) apitype.Limit {
	v := apitype.Limit{Tag: l.Tag, Limit: l.Max, Running: len(l.Holders), Waiting: l.Waiting,
		Holders: []apitype.SlotHolder{}, UpdatedBy: l.UpdatedBy, UpdatedAt: l.UpdatedAt.UTC()}
	for _, h := range l.Holders {
		sh := apitype.SlotHolder{TaskRunID: h.Ref.ID, RunID: h.Ref.RunID, Key: h.Ref.Key, Task: h.Task,
			WorkerID: h.WorkerID, Since: h.Since.UTC()}
		if !h.LeaseUntil.IsZero() {
			t := h.LeaseUntil.UTC()
			sh.LeaseUntil = &t
		}
		v.Holders = append(v.Holders, sh)
	}
	return v
}
