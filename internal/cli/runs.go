package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
)

// runsTextResultMax bounds how much of a result or parameter value `runs
// show` prints in text form; --json always prints everything.
const runsTextResultMax = 4000

// runsNoteMax bounds the NOTE column of the task-run table.
const runsNoteMax = 80

// RunsCommand returns `runs`: list, inspect and read the logs of flow runs
// stored in the database chosen by --db, or through the server given by
// --server (or BATON_SERVER); and, through a server, create, cancel and
// retry them.
func RunsCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "Inspect flow runs (list, show, logs); through a server also create, cancel, retry",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return Usagef("unknown command %q for %q; see: %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(runsListCommand(env), runsShowCommand(env), runsLogsCommand(env),
		runsCreateCommand(env), runsCancelCommand(env), runsRetryCommand(env))
	return cmd
}

// runsExactArgs is cobra.ExactArgs returning a UsageError.
func runsExactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			return Usagef("wrong number of arguments for %q: want %s, got %d; usage: %s", name, what, len(args), cmd.UseLine())
		}
		return nil
	}
}

// runsReconcile marks a run whose owning process on this host is gone as
// CRASHED. A failure to do so is only a warning: the command still shows
// what the store holds.
func runsReconcile(ctx context.Context, env *Env, st store.Store, run store.Run) store.Run {
	switch run.State {
	case store.RunRunning, store.RunPending, store.RunCancelling:
	default:
		return run
	}
	updated, err := engine.Reconcile(ctx, st, run)
	if err != nil {
		fmt.Fprintf(env.Stderr, "baton: warning: check whether run %s is still executing: %v\n", run.ID, err)
		return run
	}
	return updated
}

// parseRunState validates a --state value, case-insensitively.
func parseRunState(s string) (store.RunState, error) {
	up := store.RunState(strings.ToUpper(strings.TrimSpace(s)))
	for _, st := range store.RunStates {
		if st == up {
			return st, nil
		}
	}
	names := make([]string, len(store.RunStates))
	for i, st := range store.RunStates {
		names[i] = string(st)
	}
	return "", Usagef("invalid --state %q; valid states: %s", s, strings.Join(names, ", "))
}

func runsListCommand(env *Env) *cobra.Command {
	var (
		flow, state string
		limit       int
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List flow runs, newest first",
		Long: "List flow runs, newest first. Without a server, runs that are RUNNING, PENDING or\n" +
			"CANCELLING but whose process on this host is gone are marked CRASHED first.",
		Args: runsExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			q := runsQuery{Flow: flow, Limit: limit}
			if state != "" {
				s, err := parseRunState(state)
				if err != nil {
					return err
				}
				q.State = s
			}
			if limit < 1 {
				return Usagef("invalid --limit %d: must be at least 1", limit)
			}
			src, err := openRunsSource(ctx, env)
			if err != nil {
				return err
			}
			defer src.Close()
			runs, err := src.List(ctx, q, asJSON)
			if err != nil {
				return err
			}
			if asJSON {
				return runsWriteJSON(env.Stdout, runs)
			}
			return runsListText(env.Stdout, runs, time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVar(&flow, "flow", "", "only runs of this flow")
	f.StringVar(&state, "state", "", "only runs in this state (e.g. RUNNING, FAILED, CRASHED)")
	f.IntVar(&limit, "limit", 50, "show at most this many runs")
	f.BoolVar(&asJSON, "json", false, "print a JSON array of run objects")
	return cmd
}

// runsListText prints the table of `runs list`.
func runsListText(w io.Writer, runs []api.RunView, now time.Time) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "No runs found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFLOW\tSTATE\tATTEMPT\tCREATED\tDURATION")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, runsOneLine(r.Flow), r.State, r.Attempt,
			runsTime(r.CreatedAt), runsDuration(runsDeref(r.StartedAt), runsDeref(r.EndedAt), now))
	}
	return tw.Flush()
}

// runsShowSmall is the number of task runs up to which `runs show` lists
// every task run and event; above it, it prints a summary.
const runsShowSmall = 50

// runsShowPage is the default --limit of --steps and --events.
const runsShowPage = 100

// Sizes of the summary's lists.
const (
	runsShowFailed  = 10
	runsShowSlowest = 5
)

// runsShowData is what `runs show` prints. A large run is summarised from
// counts and a few rows, without reading all of its task runs.
type runsShowData struct {
	// detail holds the run; its TaskRuns all of them when full, and its
	// Events when eventsLoaded.
	detail       api.RunDetailView
	full         bool
	eventsLoaded bool
	total        int                  // task runs
	counts       []store.TaskRunCount // per task and state, ordered by task then state
	failed       []api.TaskRunView    // the first runsShowFailed failed ones
	failedTotal  int
	slowest      []api.TaskRunView // the runsShowSlowest slowest
	page         []api.TaskRunView // --steps
}

// runsFailedStates are the states the summary lists as failed.
var runsFailedStates = []store.TaskState{store.TaskFailed, store.TaskTimedOut, store.TaskCancelled, store.TaskCrashed}

// runsShowOpts are the flags of `runs show`.
type runsShowOpts struct {
	steps, events, all bool
	limit, offset      int
	limitSet           bool
}

// listsAll reports whether a run with n task runs is shown in full.
func (o runsShowOpts) listsAll(n int) bool {
	return o.all || (n <= runsShowSmall && !o.steps && !o.events)
}

func runsShowCommand(env *Env) *cobra.Command {
	var (
		asJSON bool
		o      runsShowOpts
	)
	cmd := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run: its task runs (summarised when many) and history",
		Long: "Show a run. A run with up to " + strconv.Itoa(runsShowSmall) + " task runs is shown with all its task runs and\n" +
			"events; a larger one with a summary: its task runs counted per task and state, the failed\n" +
			"ones and the slowest. --steps lists the task runs and --events the events, a page at a\n" +
			"time (--limit, --offset); --all prints everything. --json prints the whole run with its\n" +
			"task_runs and events (the API's form); with --limit/--offset, a page of each, and\n" +
			"task_runs_total and events_total.",
		Args: runsExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			o.limitSet = cmd.Flags().Changed("limit")
			if o.limit < 1 {
				return Usagef("invalid --limit %d: must be at least 1", o.limit)
			}
			if o.offset < 0 {
				return Usagef("invalid --offset %d: must not be negative", o.offset)
			}
			src, err := openRunsSource(ctx, env)
			if err != nil {
				return err
			}
			defer src.Close()
			if asJSON {
				if l, ok := src.(*localRuns); ok && (o.limitSet || o.offset > 0) {
					d, err := l.showPage(ctx, args[0], o)
					if err != nil {
						return err
					}
					return runsWriteJSON(env.Stdout, d)
				}
				d, err := src.Show(ctx, args[0])
				if err != nil {
					return err
				}
				return runsWriteJSON(env.Stdout, runsShowJSON(d, o))
			}
			var data runsShowData
			if l, ok := src.(*localRuns); ok {
				data, err = l.showText(ctx, args[0], o)
			} else {
				var d api.RunDetailView
				if d, err = src.Show(ctx, args[0]); err == nil {
					data = runsSummarise(d, o)
				}
			}
			if err != nil {
				return err
			}
			return runsShowText(env.Stdout, data, time.Now(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the run, its task_runs and events as one JSON object")
	f.BoolVar(&o.steps, "steps", false, "list the task runs, a page at a time (--limit, --offset)")
	f.BoolVar(&o.events, "events", false, "list the events, a page at a time (--limit, --offset)")
	f.BoolVar(&o.all, "all", false, "list every task run and event, however many")
	f.IntVar(&o.limit, "limit", runsShowPage, "at most this many task runs (--steps) or events (--events); with --json, given: a page of each")
	f.IntVar(&o.offset, "offset", 0, "skip this many task runs (--steps) or events (--events) first; with --json: of each")
	return cmd
}

// runsShowDetail is the JSON of `runs show --json`: the API's run detail,
// with the totals when --limit or --offset cut its lists.
type runsShowDetail struct {
	api.RunDetailView
	TaskRunsTotal *int `json:"task_runs_total,omitempty"`
	EventsTotal   *int `json:"events_total,omitempty"`
}

// runsShowJSON pages the task runs and events of d when --limit or --offset
// was given.
func runsShowJSON(d api.RunDetailView, o runsShowOpts) runsShowDetail {
	out := runsShowDetail{RunDetailView: d}
	if !o.limitSet && o.offset == 0 {
		return out
	}
	nt, ne := len(d.TaskRuns), len(d.Events)
	out.TaskRunsTotal, out.EventsTotal = &nt, &ne
	out.TaskRuns = runsPage(d.TaskRuns, o.offset, o.limit)
	out.Events = runsPage(d.Events, o.offset, o.limit)
	return out
}

// runsPage returns at most limit items of s from offset on.
func runsPage[T any](s []T, offset, limit int) []T {
	if offset >= len(s) {
		return s[:0]
	}
	return s[offset:min(len(s), offset+limit)]
}

// runsShowText prints the text form of `runs show`.
func runsShowText(w io.Writer, data runsShowData, now time.Time, o runsShowOpts) error {
	d := data.detail
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("Run", d.ID)
	field("Flow", d.Flow)
	field("State", d.State)
	field("Attempt", strconv.Itoa(d.Attempt))
	if d.ParentRunID != "" {
		parent := d.ParentRunID
		if d.ParentStepKey != "" {
			parent += " (step " + d.ParentStepKey + ")"
		}
		field("Parent run", parent)
	}
	field("Created", runsTime(d.CreatedAt))
	started, ended := runsDeref(d.StartedAt), runsDeref(d.EndedAt)
	if !started.IsZero() {
		field("Started", runsTime(started))
	}
	if !ended.IsZero() {
		field("Ended", runsTime(ended)+"  (took "+runsDuration(started, ended, now)+")")
	} else if !started.IsZero() {
		field("Running for", runsDuration(started, ended, now))
	}
	field("Parameters", runsValue(d.Parameters))
	if d.Error != nil {
		msg := runsOneLine(d.Error.Message)
		var tags []string
		if d.Error.Kind != "" {
			tags = append(tags, d.Error.Kind)
		}
		if d.Error.Type != "" {
			tags = append(tags, d.Error.Type)
		}
		if len(tags) > 0 {
			msg += "  [" + strings.Join(tags, ", ") + "]"
		}
		field("Error", msg)
		for _, c := range d.Error.Chain {
			if c != d.Error.Message {
				field("  caused by", runsOneLine(c))
			}
		}
	} else if d.Result != nil || d.State == string(store.RunCompleted) {
		field("Result", runsValue(d.Result))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	n := data.total
	switch {
	case n == 0:
		fmt.Fprintln(w, "Task runs: none")
	case data.full:
		fmt.Fprintln(w, "Task runs:")
		if err := runsTaskTable(w, d.TaskRuns, now); err != nil {
			return err
		}
	default:
		if err := runsShowSummary(w, data, now); err != nil {
			return err
		}
		if o.steps {
			page := data.page
			fmt.Fprintln(w)
			if len(page) == 0 {
				fmt.Fprintf(w, "Task runs: none from offset %d (there are %d)\n", o.offset, n)
			} else {
				fmt.Fprintf(w, "Task runs %d-%d of %d:\n", o.offset+1, o.offset+len(page), n)
				if err := runsTaskTable(w, page, now); err != nil {
					return err
				}
				if o.offset+len(page) < n {
					fmt.Fprintf(w, "  (more with --offset %d)\n", o.offset+len(page))
				}
			}
		} else {
			fmt.Fprintf(w, "\n(%d task runs: list them with --steps, a page at a time with --limit N --offset M, or all with --all)\n", n)
		}
	}

	fmt.Fprintln(w)
	if !data.eventsLoaded {
		fmt.Fprintln(w, "Events: not listed (list them with --events, a page at a time with --limit N --offset M, or all with --all)")
		return nil
	}
	if len(d.Events) == 0 {
		fmt.Fprintln(w, "Events: none")
		return nil
	}
	evs := d.Events
	if o.events && !o.all {
		evs = runsPage(d.Events, o.offset, o.limit)
		if len(evs) == 0 {
			fmt.Fprintf(w, "Events: none from offset %d (there are %d)\n", o.offset, len(d.Events))
			return nil
		}
		fmt.Fprintf(w, "Events %d-%d of %d:\n", o.offset+1, o.offset+len(evs), len(d.Events))
	} else {
		fmt.Fprintln(w, "Events:")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range evs {
		from := e.From
		if from == "" {
			from = "-"
		}
		subject := "run"
		if e.TaskKey != "" {
			subject = "[" + runsOneLine(e.TaskKey) + "]"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s → %s\t%s\t%s\n", runsTimeMillis(e.At), subject, from, e.To,
			runsOneLine(e.Cause), runsOneLine(e.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.events && !o.all && o.offset+len(evs) < len(d.Events) {
		fmt.Fprintf(w, "  (more with --offset %d)\n", o.offset+len(evs))
	}
	return nil
}

// runsTaskTable prints task runs as the table of `runs show`.
func runsTaskTable(w io.Writer, trs []api.TaskRunView, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  KEY\tTASK\tSTATE\tATTEMPTS\tSTARTED\tDURATION\tNOTE")
	for _, t := range trs {
		st, en := runsDeref(t.StartedAt), runsDeref(t.EndedAt)
		startedText := "-"
		if !st.IsZero() {
			startedText = runsTime(st)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\n", runsOneLine(t.Key), runsOneLine(t.Task), t.State, t.Attempts,
			startedText, runsDuration(st, en, now), runsTaskNote(t))
	}
	return tw.Flush()
}

// runsShowSummary prints the task runs of a large run: counts per task and
// state, the first failed ones and the slowest.
func runsShowSummary(w io.Writer, data runsShowData, now time.Time) error {
	fmt.Fprintf(w, "Task runs: %d (summary)\n", data.total)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TASK\tTOTAL\tSTATES")
	for i := 0; i < len(data.counts); {
		task, total := data.counts[i].Task, 0
		var parts []string
		for ; i < len(data.counts) && data.counts[i].Task == task; i++ {
			total += data.counts[i].N
			parts = append(parts, fmt.Sprintf("%s %d", data.counts[i].State, data.counts[i].N))
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", runsOneLine(task), total, strings.Join(parts, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if data.failedTotal > 0 {
		fmt.Fprintln(w)
		if data.failedTotal > len(data.failed) {
			fmt.Fprintf(w, "Failed task runs: %d (the first %d):\n", data.failedTotal, len(data.failed))
		} else {
			fmt.Fprintf(w, "Failed task runs: %d\n", data.failedTotal)
		}
		if err := runsTaskTable(w, data.failed, now); err != nil {
			return err
		}
	}
	if len(data.slowest) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Slowest task runs:\n")
		return runsTaskTable(w, data.slowest, now)
	}
	return nil
}

// runsSummarise builds what `runs show` prints from a run's full detail
// (read through a server, whose API has no summary).
func runsSummarise(d api.RunDetailView, o runsShowOpts) runsShowData {
	data := runsShowData{detail: d, total: len(d.TaskRuns)}
	data.full = o.listsAll(data.total)
	data.eventsLoaded = data.full || o.events
	if data.full {
		return data
	}
	type tk struct{ task, state string }
	n := map[tk]int{}
	for _, t := range d.TaskRuns {
		n[tk{t.Task, t.State}]++
		if slices.Contains(runsFailedStates, store.TaskState(t.State)) {
			data.failedTotal++
			if len(data.failed) < runsShowFailed {
				data.failed = append(data.failed, t)
			}
		}
	}
	for k, c := range n {
		data.counts = append(data.counts, store.TaskRunCount{Task: k.task, State: store.TaskState(k.state), N: c})
	}
	slices.SortFunc(data.counts, func(a, b store.TaskRunCount) int {
		return cmp.Or(cmp.Compare(a.Task, b.Task), cmp.Compare(a.State, b.State))
	})
	var ended []api.TaskRunView
	for _, t := range d.TaskRuns {
		if t.StartedAt != nil && t.EndedAt != nil {
			ended = append(ended, t)
		}
	}
	took := func(t api.TaskRunView) time.Duration { return t.EndedAt.Sub(*t.StartedAt) }
	slices.SortStableFunc(ended, func(a, b api.TaskRunView) int { return cmp.Compare(took(b), took(a)) })
	data.slowest = ended[:min(len(ended), runsShowSlowest)]
	if o.steps {
		data.page = runsPage(d.TaskRuns, o.offset, o.limit)
	}
	return data
}

// showText reads what `runs show` prints from the store: a large run's
// counts and a few rows, never all of its task runs.
func (l *localRuns) showText(ctx context.Context, id string, o runsShowOpts) (runsShowData, error) {
	run, err := l.get(ctx, id)
	if err != nil {
		return runsShowData{}, err
	}
	run = runsReconcile(ctx, l.env, l.st, run)
	counts, err := l.st.TaskRunCounts(ctx, run.ID)
	if err != nil {
		return runsShowData{}, fmt.Errorf("count task runs of %s: %w", run.ID, err)
	}
	data := runsShowData{counts: counts}
	for _, c := range counts {
		data.total += c.N
		if slices.Contains(runsFailedStates, c.State) {
			data.failedTotal += c.N
		}
	}
	data.full = o.listsAll(data.total)
	if data.full {
		d, err := l.Show(ctx, run.ID)
		if err != nil {
			return runsShowData{}, err
		}
		data.detail, data.eventsLoaded, data.total = d, true, len(d.TaskRuns)
		return data, nil
	}
	rv, err := api.RunViewOf(run, l.blobs)
	if err != nil {
		fmt.Fprintf(l.env.Stderr, "baton: warning: %v\n", err)
	}
	data.detail.RunView = rv
	list := func(p store.TaskRunListParams) ([]api.TaskRunView, error) {
		p.RunID = run.ID
		trs, err := l.st.TaskRunList(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("read task runs of %s: %w", run.ID, err)
		}
		out := make([]api.TaskRunView, len(trs))
		for i, tr := range trs {
			tr.Result, tr.ResultRef = nil, "" // the text view prints no results
			out[i] = api.TaskRunJSON(tr, nil)
		}
		return out, nil
	}
	if data.failed, err = list(store.TaskRunListParams{States: runsFailedStates, Limit: runsShowFailed}); err != nil {
		return runsShowData{}, err
	}
	if data.slowest, err = list(store.TaskRunListParams{Slowest: true, Limit: runsShowSlowest}); err != nil {
		return runsShowData{}, err
	}
	if o.steps {
		if data.page, err = list(store.TaskRunListParams{Offset: o.offset, Limit: o.limit}); err != nil {
			return runsShowData{}, err
		}
	}
	if o.events {
		evs, err := l.st.EventList(ctx, run.ID)
		if err != nil {
			return runsShowData{}, fmt.Errorf("read events of %s: %w", run.ID, err)
		}
		data.detail.Events = make([]api.EventView, len(evs))
		for i, e := range evs {
			data.detail.Events[i] = api.EventJSON(e)
		}
		data.eventsLoaded = true
	}
	return data, nil
}

// showPage is `runs show --json --limit N --offset M` on the store: one
// page of the task runs, read as such, and of the events.
func (l *localRuns) showPage(ctx context.Context, id string, o runsShowOpts) (runsShowDetail, error) {
	run, err := l.get(ctx, id)
	if err != nil {
		return runsShowDetail{}, err
	}
	run = runsReconcile(ctx, l.env, l.st, run)
	counts, err := l.st.TaskRunCounts(ctx, run.ID)
	if err != nil {
		return runsShowDetail{}, fmt.Errorf("count task runs of %s: %w", run.ID, err)
	}
	total := 0
	for _, c := range counts {
		total += c.N
	}
	trs, err := l.st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, Offset: o.offset, Limit: o.limit})
	if err != nil {
		return runsShowDetail{}, fmt.Errorf("read task runs of %s: %w", run.ID, err)
	}
	evs, err := l.st.EventList(ctx, run.ID)
	if err != nil {
		return runsShowDetail{}, fmt.Errorf("read events of %s: %w", run.ID, err)
	}
	ne := len(evs)
	d, err := api.RunDetailViewOf(run, trs, runsPage(evs, o.offset, o.limit), l.blobs)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(l.env.Stderr, "baton: warning: %s\n", line)
		}
	}
	return runsShowDetail{RunDetailView: d, TaskRunsTotal: &total, EventsTotal: &ne}, nil
}

// runsTaskNote is the NOTE column: where a cached result came from, the
// child run of a subflow step, and the error.
func runsTaskNote(t api.TaskRunView) string {
	var parts []string
	if t.CachedFrom != "" || t.CachedFromRun != "" {
		switch {
		case t.CachedFromRun != "" && t.CachedFrom != "":
			parts = append(parts, "cached from run "+t.CachedFromRun+" (task run "+t.CachedFrom+")")
		case t.CachedFromRun != "":
			parts = append(parts, "cached from run "+t.CachedFromRun)
		default:
			parts = append(parts, "cached from task run "+t.CachedFrom)
		}
	}
	if t.ChildRunID != "" {
		parts = append(parts, "child run "+t.ChildRunID)
	}
	if t.Error != nil {
		parts = append(parts, t.Error.Message)
	}
	return runsTruncate(runsOneLine(strings.Join(parts, "; ")), runsNoteMax)
}

func runsLogsCommand(env *Env) *cobra.Command {
	var taskKey string
	cmd := &cobra.Command{
		Use:   "logs RUN_ID",
		Short: "Print the logs of a run",
		Long:  "Print the logs of a run, one line each: TIME LEVEL [KEY] message key=value ...",
		Args:  runsExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := openRunsSource(ctx, env)
			if err != nil {
				return err
			}
			defer src.Close()
			logs, err := src.Logs(ctx, args[0], taskKey)
			if err != nil {
				return err
			}
			return runsLogsText(env.Stdout, logs)
		},
	}
	cmd.Flags().StringVar(&taskKey, "task", "", "only the logs of the task run with this step key")
	return cmd
}

// runsLogsText prints log records one a line.
func runsLogsText(w io.Writer, logs []api.LogView) error {
	bw := &bytes.Buffer{}
	for _, l := range logs {
		bw.Reset()
		bw.WriteString(runsTimeMillis(l.At))
		fmt.Fprintf(bw, " %-5s ", strings.ToUpper(l.Level))
		if l.TaskKey != "" {
			bw.WriteString("[" + l.TaskKey + "] ")
		}
		bw.WriteString(l.Message)
		runsAttrs(bw, l.Attrs)
		bw.WriteByte('\n')
		if _, err := w.Write(bw.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// runsAttrs appends " key=value" for each attribute of a JSON object, sorted
// by key. Strings are printed bare when they need no quoting; other values
// as compact JSON. Attributes that are not a JSON object are printed as is.
func runsAttrs(b *bytes.Buffer, attrs json.RawMessage) {
	if len(bytes.TrimSpace(attrs)) == 0 || string(bytes.TrimSpace(attrs)) == "null" {
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(attrs, &m); err != nil {
		b.WriteString(" attrs=")
		b.Write(attrs)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		v := m[k]
		var s string
		if json.Unmarshal(v, &s) == nil {
			if s == "" || strings.ContainsAny(s, " \t\n\r\"=") || !utf8.ValidString(s) || !strconv.CanBackquote(s) {
				b.WriteString(strconv.Quote(s))
			} else {
				b.WriteString(s)
			}
			continue
		}
		var c bytes.Buffer
		if json.Compact(&c, v) == nil {
			b.Write(c.Bytes())
		} else {
			b.Write(v)
		}
	}
}

// runsWriteJSON prints v as indented JSON.
func runsWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// runsTime formats t in local time, second precision; "-" for zero.
func runsTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// runsTimeMillis formats t in local time, millisecond precision.
func runsTimeMillis(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}

func runsDeref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// runsDuration is end-start, or now-start while still running; "-" before
// the start.
func runsDuration(start, end, now time.Time) string {
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

// runsValue prints a JSON value compactly for the text view, shortened when
// very long.
func runsValue(m json.RawMessage) string {
	if len(m) == 0 {
		return "null"
	}
	var c bytes.Buffer
	if err := json.Compact(&c, m); err != nil {
		return runsTruncate(runsOneLine(string(m)), runsTextResultMax)
	}
	s := c.String()
	if len(s) > runsTextResultMax {
		return runsTruncate(s, runsTextResultMax) + fmt.Sprintf(" (%d bytes; see --json for all of it)", len(s))
	}
	return s
}

// runsOneLine replaces line breaks and tabs, which would break the tables.
func runsOneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
}

// runsTruncate shortens s to at most max runes, ending with "…" when cut.
func runsTruncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}
