package api

import (
	"context"
	"fmt"
	"slices"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// InboxLimit bounds the paused runs Inbox reads.
const InboxLimit = 500

// Inbox lists the runs that wait for a person: PAUSED runs with a wait
// step for input or a resume, oldest wait first (GET /api/v1/inbox, the
// web UI's /inbox). It reads at most InboxLimit paused runs, newest first;
// with runID only that run's waits.
func Inbox(ctx context.Context, st store.Store, load ResultLoader, runID string) (apitype.Inbox, error) {
	var runs []store.Run
	if runID != "" {
		r, err := st.RunGet(ctx, runID)
		if err != nil {
			return apitype.Inbox{}, err
		}
		if r.State == store.RunPaused {
			runs = []store.Run{r}
		}
	} else {
		var err error
		if runs, err = st.RunList(ctx, store.RunListParams{State: store.RunPaused, Limit: InboxLimit}); err != nil {
			return apitype.Inbox{}, fmt.Errorf("list paused runs: %w", err)
		}
	}
	out := apitype.Inbox{Items: []apitype.InboxItem{}}
	for _, r := range runs {
		trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: r.ID, States: []store.TaskState{store.TaskWaiting}})
		if err != nil {
			return apitype.Inbox{}, fmt.Errorf("waits of run %s: %w", r.ID, err)
		}
		for _, tr := range trs {
			spec, err := store.DecodeWaitSpec(tr.Input)
			if err != nil || (spec.Kind != store.WaitInput && spec.Kind != store.WaitPause) {
				continue
			}
			since := tr.CreatedAt
			if !tr.StartedAt.IsZero() {
				since = tr.StartedAt
			}
			out.Items = append(out.Items, apitype.InboxItem{Run: RunJSON(r, load), Step: tr.Key, Kind: spec.Kind,
				Key: spec.Key, Prompt: spec.Prompt, Schema: viewRaw(spec.Schema), Since: since})
		}
	}
	slices.SortStableFunc(out.Items, func(a, b apitype.InboxItem) int { return a.Since.Compare(b.Since) })
	return out, nil
}
