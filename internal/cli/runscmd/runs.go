// Package runscmd implements `runs`, in both of Baton's command lines (the
// baton command and a user's program): list, show and logs read the store
// given by --db or a server given by --server (both print the API's JSON
// views, so the output is the same either way); create, cancel and retry
// need a server.
package runscmd

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

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
)

// runsTextResultMax bounds how much of a result or parameter value `runs
// show` prints in text form; --json always prints everything.
const runsTextResultMax = 4000

// runsNoteMax bounds the NOTE column of the task-run table.
const runsNoteMax = 80

// Command returns `runs`: list, inspect and read the logs of flow runs
// stored in the database chosen by --db, or through the server given by
// --server (or BATON_SERVER); and, through a server, create, cancel and
// retry them.
func Command(env *cli.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "Inspect flow runs (list, show, logs); through a server also create, cancel, retry",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown command %q for %q; see: %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(runsListCommand(env), runsShowCommand(env), runsLogsCommand(env),
		runsHistoryCommand(env), runsCreateCommand(env), runsCancelCommand(env), runsRetryCommand(env),
		runsResumeCommand(env), runsPauseCommand(env), runsUpdateCommand(env))
	return cmd
}

// runsReconcile marks a run whose owning process on this host is gone as
// CRASHED. A failure to do so is only a warning: the command still shows
// what the store holds.
func runsReconcile(ctx context.Context, env *cli.Env, st store.Store, run store.Run) store.Run {
	if !slices.Contains(store.LeasedRunStates, run.State) {
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
	return "", cli.Usagef("invalid --state %q; valid states: %s, LATE", s, strings.Join(names, ", "))
}

func runsListCommand(env *cli.Env) *cobra.Command {
	var (
		flow, state, deployment, tag string
		createdFrom, createdTo       string
		limit                        int
		asJSON                       bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List flow runs, newest first",
		Long: "List flow runs, newest first. Without a server, runs that are RUNNING, PENDING or\n" +
			"CANCELLING but whose process on this host is gone are marked CRASHED first.",
		Args: cli.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			q := runsQuery{Flow: flow, Deployment: deployment, Tag: tag, Limit: limit}
			if err := q.parseCreated(createdFrom, createdTo); err != nil {
				return err
			}
			if strings.EqualFold(strings.TrimSpace(state), apitype.RunLate) {
				q.Late, state = true, ""
			}
			if state != "" {
				s, err := parseRunState(state)
				if err != nil {
					return err
				}
				q.State = s
			}
			if limit < 1 {
				return cli.Usagef("invalid --limit %d: must be at least 1", limit)
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
				return cli.WriteJSON(env.Stdout, runs)
			}
			return runsListText(env.Stdout, runs, env.Clk().Now())
		},
	}
	f := cmd.Flags()
	f.StringVar(&flow, "flow", "", "only runs of this flow")
	f.StringVar(&deployment, "deployment", "", "only runs of this deployment")
	f.StringVar(&tag, "tag", "", "only runs of the deployments with this tag")
	f.StringVar(&createdFrom, "created-from", "", "only runs created at or after this time (RFC 3339, or 2006-01-02T15:04 or 2006-01-02 in UTC)")
	f.StringVar(&createdTo, "created-to", "", "only runs created before this time (the same forms as --created-from)")
	f.StringVar(&state, "state", "", "only runs in this state (e.g. RUNNING, FAILED, CRASHED; LATE: not started by their planned start plus a minute)")
	f.IntVar(&limit, "limit", 50, "show at most this many runs")
	f.BoolVar(&asJSON, "json", false, "print a JSON array of run objects")
	return cmd
}

// shownState is the state `runs list` and `runs show` print: LATE for a
// run not started by its planned start plus the grace.
func shownState(r apitype.Run) string {
	if r.Late {
		return apitype.RunLate
	}
	return r.State
}

// runsListText prints the table of `runs list`.
func runsListText(w io.Writer, runs []apitype.Run, now time.Time) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "No runs found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFLOW\tSTATE\tATTEMPT\tCREATED\tDURATION")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, cli.OneLine(r.Flow), shownState(r), r.Attempt,
			cli.Time(r.CreatedAt), cli.Duration(cli.Deref(r.StartedAt), cli.Deref(r.EndedAt), now))
	}
	return tw.Flush()
}

// runsShowSmall is the number of task runs up to which `runs show` lists
// every task run and event; above it, it prints a summary.
const runsShowSmall = 50

// runsShowPage is the default --limit of --steps and --events.
const runsShowPage = 100

// runsShowData is what `runs show` prints. A large run is summarised from
// counts and a few rows, without reading all of its task runs.
type runsShowData struct {
	// detail holds the run; its TaskRuns all of them when full, else the
	// --steps page; its Events all of them when full, else the --events page.
	detail       apitype.RunDetail
	full         bool
	eventsLoaded bool
	total        int // task runs
	eventsTotal  int
	summary      apitype.RunSummary
}

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

func runsShowCommand(env *cli.Env) *cobra.Command {
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
		Args: cli.ExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			o.limitSet = cmd.Flags().Changed("limit")
			if o.limit < 1 {
				return cli.Usagef("invalid --limit %d: must be at least 1", o.limit)
			}
			if o.offset < 0 {
				return cli.Usagef("invalid --offset %d: must not be negative", o.offset)
			}
			src, err := openRunsSource(ctx, env)
			if err != nil {
				return err
			}
			defer src.Close()
			if asJSON {
				if !o.limitSet && o.offset == 0 {
					d, err := src.Show(ctx, args[0])
					if err != nil {
						return err
					}
					return cli.WriteJSON(env.Stdout, d)
				}
				p, err := runsPageOf(ctx, src, args[0], apitype.PageQuery{TaskRunsOffset: o.offset, TaskRunsLimit: o.limit,
					EventsOffset: o.offset, EventsLimit: o.limit})
				if err != nil {
					return err
				}
				if p.TaskRunsTotal == nil { // a server that predates paging sent everything
					nt, ne := len(p.TaskRuns), len(p.Events)
					p.TaskRunsTotal, p.EventsTotal = &nt, &ne
					p.TaskRuns, p.Events = runsPage(p.TaskRuns, o.offset, o.limit), runsPage(p.Events, o.offset, o.limit)
				}
				return cli.WriteJSON(env.Stdout, p)
			}
			data, err := runsShowRead(ctx, src, args[0], o)
			if err != nil {
				return err
			}
			return runsShowText(env.Stdout, data, env.Clk().Now(), o)
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

// runsWaitingFor prints what a PAUSED run waits for, from its WAITING
// wait steps (of the task runs read: all of them when full), with how to
// give it that.
func runsWaitingFor(w io.Writer, d apitype.RunDetail, full bool) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Waiting for:")
	n := 0
	for _, tr := range d.TaskRuns {
		if tr.State != string(store.TaskWaiting) {
			continue
		}
		n++
		spec, err := store.DecodeWaitSpec(tr.Input)
		if err != nil {
			fmt.Fprintf(w, "  %s\n", tr.Key)
			continue
		}
		what, how := "", ""
		switch spec.Kind {
		case store.WaitInput:
			what, how = "input "+spec.Key, fmt.Sprintf("runs resume %s --key %s --input JSON", d.ID, spec.Key)
		case store.WaitPause:
			what, how = "a resume", "runs resume "+d.ID
		case store.WaitSleep:
			what = "the end of a sleep"
		case store.WaitEvent:
			what, how = "event "+spec.Key, "events send "+spec.Key+" --payload JSON"
			if len(spec.Match) > 0 {
				m, _ := json.Marshal(spec.Match)
				what += " matching " + string(m)
			}
		}
		line := "  " + what + " (" + tr.Key + ")"
		if spec.Prompt != "" {
			line += ": " + cli.Truncate(cli.OneLine(spec.Prompt), runsNoteMax)
		}
		fmt.Fprintln(w, line)
		if due := spec.Deadline(cli.Deref(tr.StartedAt)); !due.IsZero() {
			then := "then it fails"
			switch {
			case spec.Kind == store.WaitSleep:
				then = "then the run goes on"
			case len(spec.Default) > 0:
				then = "then it takes the default " + cli.Truncate(cli.OneLine(string(spec.Default)), 80)
			}
			fmt.Fprintf(w, "    until %s, %s\n", cli.Time(due), then)
		}
		if how != "" {
			fmt.Fprintf(w, "    give it with: baton %s\n", how)
		}
	}
	if n == 0 {
		if full {
			fmt.Fprintln(w, "  nothing open (what it waited for arrived: it goes on when resumed)")
		} else {
			fmt.Fprintln(w, "  see its WAITING task runs with --steps")
		}
	}
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
	field("State", shownState(d.Run))
	if d.Late || d.ScheduledAt.After(d.CreatedAt) {
		field("Planned", cli.Time(d.ScheduledAt))
	}
	if d.Deployment != "" {
		dep := d.Deployment
		if d.Schedule != "" {
			dep += " (schedule " + d.Schedule + ")"
		}
		field("Deployment", dep)
	}
	field("Attempt", strconv.Itoa(d.Attempt))
	if d.ParentRunID != "" {
		parent := d.ParentRunID
		if d.ParentStepKey != "" {
			parent += " (step " + d.ParentStepKey + ")"
		}
		field("Parent run", parent)
	}
	field("Created", cli.Time(d.CreatedAt))
	started, ended := cli.Deref(d.StartedAt), cli.Deref(d.EndedAt)
	if !started.IsZero() {
		field("Started", cli.Time(started))
	}
	if !ended.IsZero() {
		field("Ended", cli.Time(ended)+"  (took "+cli.Duration(started, ended, now)+")")
	} else if !started.IsZero() {
		field("Running for", cli.Duration(started, ended, now))
	}
	field("Parameters", runsValue(d.Parameters))
	if d.WaitingReason != "" {
		field("Waiting", cli.OneLine(d.WaitingReason))
	}
	if d.Error != nil {
		msg := cli.OneLine(d.Error.Message)
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
				field("  caused by", cli.OneLine(c))
			}
		}
	} else if (d.Result != nil && string(d.Result) != "null") || d.State == string(store.RunCompleted) {
		field("Result", runsValue(d.Result))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if d.State == string(store.RunPaused) {
		runsWaitingFor(w, d, data.full)
	}
	if len(d.Attempts) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Attempts:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, a := range d.Attempts {
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", a.Attempt, runsAttemptSteps(a, d.Run), runsAttemptEdit(a))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
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
			page := d.TaskRuns
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
	evs, paged := d.Events, !data.full
	switch {
	case data.eventsTotal == 0:
		fmt.Fprintln(w, "Events: none")
		return nil
	case paged && len(evs) == 0:
		fmt.Fprintf(w, "Events: none from offset %d (there are %d)\n", o.offset, data.eventsTotal)
		return nil
	case paged:
		fmt.Fprintf(w, "Events %d-%d of %d:\n", o.offset+1, o.offset+len(evs), data.eventsTotal)
	default:
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
			subject = "[" + cli.OneLine(e.TaskKey) + "]"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s → %s\t%s\t%s\n", cli.TimeMillis(e.At), subject, from, e.To,
			cli.OneLine(e.Cause), cli.OneLine(e.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if paged && o.offset+len(evs) < data.eventsTotal {
		fmt.Fprintf(w, "  (more with --offset %d)\n", o.offset+len(evs))
	}
	return nil
}

// runsAttemptSteps says how many steps an attempt reused and ran.
func runsAttemptSteps(a apitype.Attempt, run apitype.Run) string {
	if a.Steps == nil {
		if a.Attempt == run.Attempt && !store.RunState(run.State).Final() {
			return "in progress"
		}
		return "steps not recorded (the attempt did not end in its process)"
	}
	return fmt.Sprintf("%d reused, %d ran", a.Steps.Reused, a.Steps.Ran)
}

// runsAttemptEdit describes the parameter edit an attempt started with.
func runsAttemptEdit(a apitype.Attempt) string {
	e := a.Edit
	if e == nil {
		return ""
	}
	return fmt.Sprintf("parameters edited by %s: %s (were %s)", cli.OneLine(e.By),
		cli.Truncate(runsValue(e.To), 200), cli.Truncate(runsValue(e.From), 200))
}

// runsTaskTable prints task runs as the table of `runs show`.
func runsTaskTable(w io.Writer, trs []apitype.TaskRun, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  KEY\tTASK\tSTATE\tATTEMPTS\tSTARTED\tDURATION\tNOTE")
	for _, t := range trs {
		st, en := cli.Deref(t.StartedAt), cli.Deref(t.EndedAt)
		startedText := "-"
		if !st.IsZero() {
			startedText = cli.Time(st)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\n", cli.OneLine(t.Key), cli.OneLine(t.Task), t.State, t.Attempts,
			startedText, cli.Duration(st, en, now), runsTaskNote(t))
	}
	return tw.Flush()
}

// runsShowSummary prints the task runs of a large run: counts per task and
// state, the first failed ones and the slowest.
func runsShowSummary(w io.Writer, data runsShowData, now time.Time) error {
	sum := data.summary
	fmt.Fprintf(w, "Task runs: %d (summary)\n", data.total)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TASK\tTOTAL\tSTATES")
	for i := 0; i < len(sum.Counts); {
		task, total := sum.Counts[i].Task, 0
		var parts []string
		for ; i < len(sum.Counts) && sum.Counts[i].Task == task; i++ {
			total += sum.Counts[i].N
			parts = append(parts, fmt.Sprintf("%s %d", sum.Counts[i].State, sum.Counts[i].N))
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", cli.OneLine(task), total, strings.Join(parts, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if sum.FailedTotal > 0 {
		fmt.Fprintln(w)
		if sum.FailedTotal > len(sum.Failed) {
			fmt.Fprintf(w, "Failed task runs: %d (the first %d):\n", sum.FailedTotal, len(sum.Failed))
		} else {
			fmt.Fprintf(w, "Failed task runs: %d\n", sum.FailedTotal)
		}
		if err := runsTaskTable(w, sum.Failed, now); err != nil {
			return err
		}
	}
	if len(sum.Slowest) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Slowest task runs:\n")
		return runsTaskTable(w, sum.Slowest, now)
	}
	return nil
}

// runsPageOf reads a page of a run's detail: from the store, or through
// the server's paged GET /runs/{id}.
func runsPageOf(ctx context.Context, src runsSource, id string, q apitype.PageQuery) (apitype.RunPage, error) {
	switch src := src.(type) {
	case *localRuns:
		run, err := src.get(ctx, id)
		if err != nil {
			return apitype.RunPage{}, err
		}
		run = runsReconcile(ctx, src.env, src.st, run)
		p, warn, err := api.RunPage(ctx, src.st, run, q, src.blobs)
		if warn != nil {
			for _, line := range strings.Split(warn.Error(), "\n") {
				fmt.Fprintf(src.env.Stderr, "baton: warning: %s\n", line)
			}
		}
		p.WaitingReason = api.WaitingReason(ctx, src.st, run, src.env.Clk().Now().Add(-store.LiveWorkerWindow))
		return p, err
	case *remoteRuns:
		p, err := src.c.GetRunPage(ctx, id, q)
		if err != nil {
			return p, cli.APIError(err, id)
		}
		return p, nil
	}
	return apitype.RunPage{}, fmt.Errorf("runs show: unknown source %T", src)
}

// runsShowRead reads what `runs show` prints: the counts, the summary and
// the pages asked for in one read; the whole run only when it is small (or
// --all).
func runsShowRead(ctx context.Context, src runsSource, id string, o runsShowOpts) (runsShowData, error) {
	q := apitype.PageQuery{Summary: true}
	if o.steps {
		q.TaskRunsOffset, q.TaskRunsLimit = o.offset, o.limit
	}
	if o.events {
		q.EventsOffset, q.EventsLimit = o.offset, o.limit
	}
	if o.all {
		q = apitype.FullPage
	}
	p, err := runsPageOf(ctx, src, id, q)
	if err != nil {
		return runsShowData{}, err
	}
	if p.TaskRunsTotal == nil || o.all { // everything was read
		return runsSummarise(p.RunDetail, o), nil
	}
	if o.listsAll(*p.TaskRunsTotal) {
		d, err := src.Show(ctx, id)
		if err != nil {
			return runsShowData{}, err
		}
		return runsSummarise(d, o), nil
	}
	data := runsShowData{detail: p.RunDetail, total: *p.TaskRunsTotal, eventsLoaded: o.events}
	if p.Summary != nil {
		data.summary = *p.Summary
	}
	if p.EventsTotal != nil {
		data.eventsTotal = *p.EventsTotal
	}
	return data, nil
}

// runsSummarise builds what `runs show` prints from a run's full detail
// (from a server that predates paging, or for a run shown whole).
func runsSummarise(d apitype.RunDetail, o runsShowOpts) runsShowData {
	data := runsShowData{detail: d, total: len(d.TaskRuns), eventsTotal: len(d.Events)}
	data.full = o.listsAll(data.total)
	data.eventsLoaded = data.full || o.events
	if data.full {
		return data
	}
	type tk struct{ task, state string }
	n := map[tk]int{}
	sum := &data.summary
	sum.TaskRuns = data.total
	for _, t := range d.TaskRuns {
		n[tk{t.Task, t.State}]++
		if slices.Contains(api.FailedTaskStates, store.TaskState(t.State)) {
			sum.FailedTotal++
			if len(sum.Failed) < api.SummaryFailed {
				sum.Failed = append(sum.Failed, t)
			}
		}
	}
	for k, c := range n {
		sum.Counts = append(sum.Counts, apitype.TaskRunCount{Task: k.task, State: k.state, N: c})
	}
	slices.SortFunc(sum.Counts, func(a, b apitype.TaskRunCount) int {
		return cmp.Or(cmp.Compare(a.Task, b.Task), cmp.Compare(a.State, b.State))
	})
	var ended []apitype.TaskRun
	for _, t := range d.TaskRuns {
		if t.StartedAt != nil && t.EndedAt != nil {
			ended = append(ended, t)
		}
	}
	took := func(t apitype.TaskRun) time.Duration { return t.EndedAt.Sub(*t.StartedAt) }
	slices.SortStableFunc(ended, func(a, b apitype.TaskRun) int { return cmp.Compare(took(b), took(a)) })
	sum.Slowest = ended[:min(len(ended), api.SummarySlowest)]
	if o.steps {
		data.detail.TaskRuns = runsPage(d.TaskRuns, o.offset, o.limit)
	}
	if o.events {
		data.detail.Events = runsPage(d.Events, o.offset, o.limit)
	}
	return data
}

// runsTaskNote is the NOTE column: where a cached result came from, the
// child run of a subflow step, and the error.
func runsTaskNote(t apitype.TaskRun) string {
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
	return cli.Truncate(cli.OneLine(strings.Join(parts, "; ")), runsNoteMax)
}

func runsLogsCommand(env *cli.Env) *cobra.Command {
	var f apitype.LogFilter
	cmd := &cobra.Command{
		Use:   "logs RUN_ID",
		Short: "Print the logs of a run",
		Long: "Print the logs of a run, one line each: TIME LEVEL [KEY] message key=value ...\n\n" +
			"--search and --level filter in the store (or on the server): the lines whose message contains\n" +
			"the text (ASCII case-insensitive), at the level or above.",
		Args: cli.ExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			for _, x := range []struct{ flag, v string }{{"--task", f.Task}, {"--search", f.Q}} {
				if err := store.CheckIdentifier(x.flag, x.v); err != nil {
					return &cli.UsageError{Err: err}
				}
			}
			level, err := store.CheckLogLevel("--level", f.Level)
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			f.Level = level
			src, err := openRunsSource(ctx, env)
			if err != nil {
				return err
			}
			defer src.Close()
			logs, err := src.Logs(ctx, args[0], f)
			if err != nil {
				return err
			}
			return runsLogsText(env.Stdout, logs)
		},
	}
	cmd.Flags().StringVar(&f.Task, "task", "", "only the logs of the task run with this step key")
	cmd.Flags().StringVar(&f.Q, "search", "", "only the lines whose message contains `TEXT` (ASCII case-insensitive)")
	cmd.Flags().StringVar(&f.Level, "level", "", "only the lines at `LEVEL` or above: DEBUG, INFO, WARN or ERROR")
	return cmd
}

// runsLogsText prints log records one a line.
func runsLogsText(w io.Writer, logs []apitype.Log) error {
	bw := &bytes.Buffer{}
	for _, l := range logs {
		bw.Reset()
		bw.WriteString(cli.TimeMillis(l.At))
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

// runsValue prints a JSON value compactly for the text view, shortened when
// very long.
func runsValue(m json.RawMessage) string {
	if len(m) == 0 {
		return "null"
	}
	var c bytes.Buffer
	if err := json.Compact(&c, m); err != nil {
		return cli.Truncate(cli.OneLine(string(m)), runsTextResultMax)
	}
	s := c.String()
	if len(s) > runsTextResultMax {
		return cli.Truncate(s, runsTextResultMax) + fmt.Sprintf(" (%d bytes; see --json for all of it)", len(s))
	}
	return s
}
