package runscmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
)

// runsSource is where `runs list/show/logs` read: the local store (--db) or
// a Baton server through its API (--server, BATON_SERVER). Both return the
// API's JSON views, so the commands print the same thing either way.
type runsSource interface {
	// List returns runs, newest first. full asks for results stored in the
	// blob store too (for --json).
	List(ctx context.Context, q runsQuery, full bool) ([]apitype.Run, error)
	// Show returns a run with its task runs and events; an unknown id is a
	// UsageError.
	Show(ctx context.Context, id string) (apitype.RunDetail, error)
	// Logs returns a run's logs, optionally of one step key; an unknown id
	// or step key is a UsageError.
	Logs(ctx context.Context, id string, f apitype.LogFilter) ([]apitype.Log, error)
	// History returns a page of a run's history (see api.HistoryPage); an
	// unknown id is a UsageError.
	History(ctx context.Context, id string, after int64, limit int) (apitype.HistoryPage, error)
	Close() error
}

// runsQuery filters List.
type runsQuery struct {
	Flow  string
	State store.RunState // "" for any
	Late  bool           // only late runs (apitype.Run.Late)
	// Deployment keeps the runs of that deployment, Tag those of the
	// deployments with that tag ("" for any).
	Deployment, Tag string
	// CreatedFrom and CreatedTo bound the creation time (zero: no bound),
	// from inclusive, to exclusive, as GET /api/v1/runs's created_from and
	// created_to.
	CreatedFrom, CreatedTo time.Time
	Limit                  int
}

// parseCreated reads --created-from and --created-to with the API's
// parser of created_from and created_to (api.ParseTime), so a bad time is
// refused in the API's words, naming the flag.
func (q *runsQuery) parseCreated(from, to string) error {
	var err error
	if from != "" {
		if q.CreatedFrom, err = api.ParseTime("--created-from", from); err != nil {
			return &cli.UsageError{Err: err}
		}
	}
	if to != "" {
		if q.CreatedTo, err = api.ParseTime("--created-to", to); err != nil {
			return &cli.UsageError{Err: err}
		}
	}
	if err := api.CheckTimeRange("--created-from", "--created-to", q.CreatedFrom, q.CreatedTo); err != nil {
		return &cli.UsageError{Err: err}
	}
	return nil
}

// check validates the identifiers of q as the API does, naming the flags.
func (q runsQuery) check() error {
	for _, f := range []struct{ name, value string }{{"--flow", q.Flow}, {"--deployment", q.Deployment}, {"--tag", q.Tag}} {
		if err := store.CheckIdentifier(f.name, f.value); err != nil {
			return &cli.UsageError{Err: err}
		}
	}
	return nil
}

// listParams is the store's query of q.
func (q runsQuery) listParams() store.RunListParams {
	return store.RunListParams{Flow: q.Flow, State: q.State, Deployment: q.Deployment, Tag: q.Tag,
		CreatedFrom: q.CreatedFrom, CreatedTo: q.CreatedTo, Limit: q.Limit}
}

// openRunsSource returns the server's source when a server is configured,
// else the local store's.
func openRunsSource(ctx context.Context, env *cli.Env) (runsSource, error) {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return nil, err
		}
		return &remoteRuns{c: c}, nil
	}
	st, blobs, err := env.OpenStoreForReading(ctx)
	if err != nil {
		return nil, err
	}
	return &localRuns{env: env, st: st, blobs: blobs}, nil
}

// localRuns reads the local store. Runs whose process on this host is gone
// are marked CRASHED as they are read.
type localRuns struct {
	env   *cli.Env
	st    store.Store
	blobs *blob.Store
}

func (l *localRuns) Close() error { return l.st.Close() }

func (l *localRuns) List(ctx context.Context, q runsQuery, full bool) ([]apitype.Run, error) {
	st, env := l.st, l.env
	if err := q.check(); err != nil {
		return nil, err
	}
	p := q.listParams()
	if q.Late {
		return l.listLate(ctx, q, full)
	}
	if p.State == store.RunCrashed {
		// Dead RUNNING runs are only recorded as CRASHED once someone
		// looks at them: look at the active runs first.
		for _, active := range store.LeasedRunStates {
			runs, err := st.RunList(ctx, store.RunListParams{Flow: q.Flow, State: active, Limit: 1000})
			if err != nil {
				return nil, fmt.Errorf("list runs: %w", err)
			}
			for _, r := range runs {
				runsReconcile(ctx, env, st, r)
			}
		}
	}
	runs, err := st.RunList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	views := make([]apitype.Run, 0, len(runs))
	for _, r := range runs {
		r = runsReconcile(ctx, env, st, r)
		if p.State != "" && r.State != p.State {
			continue // it changed state (crashed) since the query
		}
		var load api.ResultLoader
		if full {
			load = l.blobs
		}
		v, err := api.RunViewOf(r, load)
		if err != nil && full {
			fmt.Fprintf(env.Stderr, "baton: warning: %v\n", err)
		}
		api.MarkLate(&v, env.Clk().Now(), api.LateGrace)
		views = append(views, v)
	}
	return views, nil
}

// listLate lists the late runs: SCHEDULED or AWAITING_SLOT past their
// planned start plus the grace, newest first.
func (l *localRuns) listLate(ctx context.Context, q runsQuery, full bool) ([]apitype.Run, error) {
	var views []apitype.Run
	for _, state := range []store.RunState{store.RunScheduled, store.RunAwaitingSlot} {
		sq := q
		sq.State, sq.Late, sq.Limit = state, false, 10000
		vs, err := l.List(ctx, sq, full)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if v.Late {
				views = append(views, v)
			}
		}
	}
	slices.SortStableFunc(views, func(a, b apitype.Run) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if q.Limit > 0 && len(views) > q.Limit {
		views = views[:q.Limit]
	}
	if views == nil {
		views = []apitype.Run{}
	}
	return views, nil
}

func (l *localRuns) get(ctx context.Context, id string) (store.Run, error) {
	if err := store.CheckIdentifier("run id", id); err != nil {
		return store.Run{}, &cli.UsageError{Err: err} // as the API answers (PostgreSQL cannot even look it up)
	}
	run, err := l.st.RunGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return run, cli.UnknownRun(id)
	}
	if err != nil {
		return run, fmt.Errorf("read run %s: %w", id, err)
	}
	return run, nil
}

func (l *localRuns) Show(ctx context.Context, id string) (apitype.RunDetail, error) {
	run, err := l.get(ctx, id)
	if err != nil {
		return apitype.RunDetail{}, err
	}
	run = runsReconcile(ctx, l.env, l.st, run)
	trs, err := l.st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID})
	if err != nil {
		return apitype.RunDetail{}, fmt.Errorf("read task runs of %s: %w", run.ID, err)
	}
	evs, err := l.st.EventList(ctx, run.ID)
	if err != nil {
		return apitype.RunDetail{}, fmt.Errorf("read events of %s: %w", run.ID, err)
	}
	d, err := api.RunDetailViewOf(run, trs, evs, l.blobs)
	api.MarkLate(&d.Run, l.env.Clk().Now(), api.LateGrace)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(l.env.Stderr, "baton: warning: %s\n", line)
		}
	}
	d.WaitingReason = api.WaitingReason(ctx, l.st, run, l.env.Clk().Now().Add(-store.LiveWorkerWindow))
	return d, nil
}

func (l *localRuns) Logs(ctx context.Context, id string, f apitype.LogFilter) ([]apitype.Log, error) {
	taskKey := f.Task
	run, err := l.get(ctx, id)
	if err != nil {
		return nil, err
	}
	logs, err := l.st.LogList(ctx, store.LogListParams{RunID: run.ID, TaskKey: taskKey, Search: f.Q, MinLevel: f.Level})
	if err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", run.ID, err)
	}
	if len(logs) == 0 && taskKey != "" {
		trs, err := l.st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, Key: taskKey})
		if err != nil {
			return nil, fmt.Errorf("read task runs of %s: %w", run.ID, err)
		}
		if len(trs) == 0 {
			return nil, unknownTaskKey(run.ID, taskKey)
		}
	}
	out := make([]apitype.Log, len(logs))
	for i, l := range logs {
		out[i] = api.LogJSON(l)
	}
	return out, nil
}

func (l *localRuns) History(ctx context.Context, id string, after int64, limit int) (apitype.HistoryPage, error) {
	run, err := l.get(ctx, id)
	if err != nil {
		return apitype.HistoryPage{}, err
	}
	if after == 0 {
		runsReconcile(ctx, l.env, l.st, run) // a run whose process is gone: its crash is history too
	}
	page, err := api.HistoryPage(ctx, l.st, run.ID, after, limit)
	if errors.Is(err, store.ErrNotFound) {
		return page, cli.UnknownRun(id)
	}
	if err != nil {
		return page, fmt.Errorf("read history of %s: %w", run.ID, err)
	}
	return page, nil
}

func unknownTaskKey(runID, key string) error {
	return &cli.UsageError{Err: &cli.Hint{Format: "run %s has no task with key %q; see the keys with: %s runs show %s",
		Args: []any{runID, key, cli.HintCommand, runID}}}
}

// remoteRuns reads through a Baton server.
type remoteRuns struct {
	c *client.Client
}

func (r *remoteRuns) Close() error { return nil }

func (r *remoteRuns) List(ctx context.Context, q runsQuery, _ bool) ([]apitype.Run, error) {
	state := string(q.State)
	if q.Late {
		state = apitype.RunLate
	}
	if err := q.check(); err != nil {
		return nil, err
	}
	runs, err := r.c.ListRuns(ctx, client.ListRunsParams{Flow: q.Flow, State: state, Deployment: q.Deployment, Tag: q.Tag,
		CreatedFrom: q.CreatedFrom, CreatedTo: q.CreatedTo, Limit: q.Limit})
	if err != nil {
		return nil, cli.APIError(err, "")
	}
	if runs == nil {
		runs = []apitype.Run{}
	}
	return runs, nil
}

func (r *remoteRuns) Show(ctx context.Context, id string) (apitype.RunDetail, error) {
	d, err := r.c.GetRun(ctx, id)
	if err != nil {
		return d, cli.APIError(err, id)
	}
	if d.TaskRuns == nil {
		d.TaskRuns = []apitype.TaskRun{}
	}
	if d.Events == nil {
		d.Events = []apitype.Event{}
	}
	return d, nil
}

func (r *remoteRuns) Logs(ctx context.Context, id string, f apitype.LogFilter) ([]apitype.Log, error) {
	taskKey := f.Task
	logs, err := r.c.SearchRunLogs(ctx, id, f)
	if err != nil {
		return nil, cli.APIError(err, id)
	}
	if len(logs) == 0 && taskKey != "" {
		d, err := r.Show(ctx, id)
		if err != nil {
			return nil, err
		}
		found := false
		for _, t := range d.TaskRuns {
			found = found || t.Key == taskKey
		}
		if !found {
			return nil, unknownTaskKey(id, taskKey)
		}
	}
	return logs, nil
}

func (r *remoteRuns) History(ctx context.Context, id string, after int64, limit int) (apitype.HistoryPage, error) {
	page, err := r.c.RunHistory(ctx, id, after, limit)
	if err != nil {
		return page, cli.APIError(err, id)
	}
	return page, nil
}
