package deploycmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// Command returns `deployments` and its subcommands.
func Command(env *cli.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deployments",
		Aliases: []string{"deployment"},
		Short:   "Manage deployments: named, scheduled ways to run a flow",
		Long: "A deployment is a flow with a unique name, default parameters, a work queue, tags, an optional\n" +
			"limit of active runs and schedules (cron, interval or RRULE, in a time zone). The scheduler of\n" +
			"the server creates their runs ahead; commands work on the store (--db) or a server (--server).",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown command %q for %q; see: %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(createCommand(env), updateCommand(env), listCommand(env), showCommand(env),
		pauseCommand(env, true), pauseCommand(env, false), runCommand(env), deleteCommand(env), nextCommand(env),
		backfillCommand(env))
	return cmd
}

// declFlags are the flags of a declaration (create, update).
type declFlags struct {
	flow, cron, interval, rrule, timezone, anchor string
	params, queue, jitter, overlap, catchup       string
	collision, description                        string
	tags                                          []string
	maxActive                                     int
}

func (f *declFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.flow, "flow", "", "the flow the deployment runs")
	fs.StringVar(&f.cron, "cron", "", "cron `EXPR` (5 or 6 fields, or @hourly, @daily, ...)")
	fs.StringVar(&f.interval, "interval", "", "fixed interval `DURATION` (90s, 15m, 1h, 2d)")
	fs.StringVar(&f.rrule, "rrule", "", "RFC 5545 `RULE` (FREQ=WEEKLY;BYDAY=MO;BYHOUR=9)")
	fs.StringVar(&f.timezone, "timezone", "", "IANA time `ZONE` of the schedule (default UTC)")
	fs.StringVar(&f.anchor, "anchor", "", "`TIME` (RFC 3339) an interval counts from")
	fs.StringVar(&f.params, "params", "", "default parameters as a JSON object, or @FILE")
	fs.StringVar(&f.queue, "queue", "", "work queue of the runs (default \""+apitype.DefaultQueue+"\")")
	fs.StringVar(&f.jitter, "jitter", "", "delay each run by a deterministic `DURATION` below this")
	fs.StringVar(&f.overlap, "overlap", "", "while an earlier run is active: skip (default), buffer_one, buffer_all, cancel_other, allow_all")
	fs.StringVar(&f.catchup, "catchup", "", "fire times missed while no scheduler ran to create: 0 (default: the latest), a DURATION, or all")
	fs.IntVar(&f.maxActive, "max-active", 0, "at most `N` active runs (0: no limit)")
	fs.StringVar(&f.collision, "collision", "", "a run beyond --max-active: queue (default: it waits), skip, cancel_oldest")
	fs.StringVar(&f.description, "description", "", "what the deployment is for")
	fs.StringArrayVar(&f.tags, "tag", nil, "a tag of the deployment (repeatable)")
}

// scheduleRequest is the schedule of the flags, nil when none is given.
func (f *declFlags) scheduleRequest() (*apitype.ScheduleRequest, error) {
	n := 0
	for _, v := range []string{f.cron, f.interval, f.rrule} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return nil, cli.Usagef("give one of --cron, --interval and --rrule")
	}
	if n == 0 {
		return nil, nil
	}
	sr := &apitype.ScheduleRequest{Cron: f.cron, Interval: f.interval, RRule: f.rrule, Timezone: f.timezone,
		Overlap: f.overlap, Catchup: f.catchup, Jitter: f.jitter}
	if f.anchor != "" {
		t, err := time.Parse(time.RFC3339, f.anchor)
		if err != nil {
			return nil, cli.Usagef("invalid --anchor %q: expected an RFC 3339 time such as 2026-01-02T03:00:00Z", f.anchor)
		}
		sr.Anchor = &t
	}
	return sr, nil
}

func readParams(flag, v string) (json.RawMessage, error) {
	raw, err := cli.ReadArg(flag, v)
	if err != nil {
		return nil, err
	}
	if err := params.CheckJSON([]byte(raw), flag); err != nil {
		return nil, &cli.UsageError{Err: err}
	}
	return json.RawMessage(raw), nil
}

func createCommand(env *cli.Env) *cobra.Command {
	var (
		f      declFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --flow FLOW (--cron EXPR | --interval DURATION | --rrule RULE)",
		Short: "Create a deployment",
		Args:  cli.ExactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.DeploymentRequest{Name: args[0], Flow: f.flow, Queue: f.queue, Tags: f.tags,
				MaxActive: f.maxActive, Collision: f.collision, Description: f.description}
			sr, err := f.scheduleRequest()
			if err != nil {
				return err
			}
			if sr != nil {
				req.Schedules = []apitype.ScheduleRequest{*sr}
			} else if f.timezone != "" || f.anchor != "" || f.overlap != "" || f.catchup != "" || f.jitter != "" {
				return cli.Usagef("--timezone, --anchor, --overlap, --catchup and --jitter need a schedule: --cron, --interval or --rrule")
			}
			if f.params != "" {
				if req.Parameters, err = readParams("--params", f.params); err != nil {
					return err
				}
			}
			src, err := open(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer src.Close()
			d, _, err := src.Put(cmd.Context(), store.PutCreate, req)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, d)
			}
			fmt.Fprintf(env.Stdout, "created deployment %s (flow %s, queue %s)\n", d.Name, d.Flow, d.Queue)
			for _, s := range d.Schedules {
				fmt.Fprintf(env.Stdout, "  schedule %s: %s\n", s.ID, describe(s))
			}
			return nil
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the deployment as JSON")
	return cmd
}

func updateCommand(env *cli.Env) *cobra.Command {
	var (
		f      declFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a deployment: the flags given replace what they name",
		Long: "Change a deployment's declaration. A schedule flag (--cron, --interval, --rrule) replaces its\n" +
			"schedules with that one (runs of a removed schedule not started yet are cancelled; the same spec\n" +
			"keeps its schedule id); --overlap, --catchup, --jitter alone change every schedule. Paused state\n" +
			"and notes stay.",
		Args: cli.ExactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			fs := cmd.Flags()
			src, err := open(ctx, env)
			if err != nil {
				return err
			}
			defer src.Close()
			cur, err := src.Get(ctx, args[0])
			if err != nil {
				return err
			}
			req := requestOf(cur)
			set := func(name string, dst *string, v string) {
				if fs.Changed(name) {
					*dst = v
				}
			}
			set("flow", &req.Flow, f.flow)
			set("queue", &req.Queue, f.queue)
			set("collision", &req.Collision, f.collision)
			set("description", &req.Description, f.description)
			if fs.Changed("max-active") {
				req.MaxActive = f.maxActive
			}
			if fs.Changed("tag") {
				req.Tags = f.tags
			}
			if fs.Changed("params") {
				if req.Parameters, err = readParams("--params", f.params); err != nil {
					return err
				}
			}
			sr, err := f.scheduleRequest()
			if err != nil {
				return err
			}
			if sr != nil {
				req.Schedules = []apitype.ScheduleRequest{*sr}
			} else {
				for i := range req.Schedules {
					s := &req.Schedules[i]
					set("overlap", &s.Overlap, f.overlap)
					set("catchup", &s.Catchup, f.catchup)
					set("jitter", &s.Jitter, f.jitter)
					set("timezone", &s.Timezone, f.timezone)
				}
			}
			d, changed, err := src.Put(ctx, store.PutUpdate, req)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, d)
			}
			if !changed {
				fmt.Fprintf(env.Stdout, "deployment %s unchanged\n", d.Name)
				return nil
			}
			fmt.Fprintf(env.Stdout, "updated deployment %s\n", d.Name)
			return nil
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the deployment as JSON")
	return cmd
}

// requestOf is the declaration of a deployment document.
func requestOf(d apitype.Deployment) apitype.DeploymentRequest {
	req := apitype.DeploymentRequest{Name: d.Name, Flow: d.Flow, Description: d.Description, Queue: d.Queue,
		Tags: d.Tags, MaxActive: d.MaxActive, Collision: d.Collision}
	if p := strings.TrimSpace(string(d.Parameters)); p != "" && p != "null" {
		req.Parameters = d.Parameters
	}
	for _, s := range d.Schedules {
		req.Schedules = append(req.Schedules, apitype.ScheduleRequest{Cron: s.Cron, Interval: s.Interval, Anchor: s.Anchor,
			RRule: s.RRule, Timezone: s.Timezone, Overlap: s.Overlap, Catchup: s.Catchup, Jitter: s.Jitter})
	}
	return req
}

// describe says what a schedule does, in one line.
func describe(s apitype.Schedule) string {
	var b strings.Builder
	switch {
	case s.Cron != "":
		fmt.Fprintf(&b, "cron %q", s.Cron)
	case s.RRule != "":
		fmt.Fprintf(&b, "rrule %q", s.RRule)
	default:
		fmt.Fprintf(&b, "every %s", s.Interval)
		if s.Anchor != nil {
			fmt.Fprintf(&b, " from %s", s.Anchor.Format(time.RFC3339))
		}
	}
	if s.Timezone != "" {
		fmt.Fprintf(&b, " in %s", s.Timezone)
	}
	fmt.Fprintf(&b, ", overlap %s, catch-up %s", s.Overlap, s.Catchup)
	if s.Jitter != "" {
		fmt.Fprintf(&b, ", jitter %s", s.Jitter)
	}
	if s.Paused {
		b.WriteString(", PAUSED")
		if s.PauseNote != "" {
			fmt.Fprintf(&b, " (%s)", s.PauseNote)
		}
	}
	return b.String()
}

func listCommand(env *cli.Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deployments",
		Args:  cli.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := open(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer src.Close()
			ds, err := src.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, map[string]any{"deployments": ds})
			}
			if len(ds) == 0 {
				_, err := fmt.Fprintln(env.Stdout, "no deployments; create one with: "+env.Cmd()+" deployments create NAME --flow FLOW --cron EXPR")
				return err
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tFLOW\tQUEUE\tSCHEDULES\tSTATE\tNEXT")
			for _, d := range ds {
				state := "active"
				if d.Paused {
					state = "paused"
				}
				var next *time.Time
				for _, s := range d.Schedules {
					if s.NextFire != nil && !s.Paused && (next == nil || s.NextFire.Before(*next)) {
						next = s.NextFire
					}
				}
				nx := "-"
				if next != nil && !d.Paused {
					nx = next.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.Name, d.Flow, d.Queue, len(d.Schedules), state, nx)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the deployments as JSON")
	return cmd
}

func showCommand(env *cli.Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a deployment: its declaration, schedules and history (with pause notes)",
		Args:  cli.ExactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := open(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer src.Close()
			d, err := src.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, d)
			}
			return printDeployment(env.Stdout, d)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the deployment as JSON")
	return cmd
}

func printDeployment(w io.Writer, d apitype.Deployment) error {
	fmt.Fprintf(w, "Deployment:  %s\n", d.Name)
	fmt.Fprintf(w, "Flow:        %s\n", d.Flow)
	if d.Description != "" {
		fmt.Fprintf(w, "Description: %s\n", d.Description)
	}
	fmt.Fprintf(w, "Queue:       %s\n", d.Queue)
	if len(d.Tags) > 0 {
		fmt.Fprintf(w, "Tags:        %s\n", strings.Join(d.Tags, ", "))
	}
	if p := strings.TrimSpace(string(d.Parameters)); p != "" && p != "null" {
		fmt.Fprintf(w, "Parameters:  %s\n", p)
	}
	if d.MaxActive > 0 {
		fmt.Fprintf(w, "Max active:  %d (collision %s)\n", d.MaxActive, d.Collision)
	}
	state := "active"
	if d.Paused {
		state = "PAUSED"
		if d.PauseNote != "" {
			state += ": " + d.PauseNote
		}
	}
	fmt.Fprintf(w, "State:       %s\n", state)
	fmt.Fprintf(w, "Source:      %s\n", d.Source)
	fmt.Fprintf(w, "Schedules:\n")
	if len(d.Schedules) == 0 {
		fmt.Fprintf(w, "  none (runs only when started: deployments run %s)\n", d.Name)
	}
	for _, s := range d.Schedules {
		fmt.Fprintf(w, "  %s  %s\n", s.ID, describe(s))
		if s.NextFire != nil {
			fmt.Fprintf(w, "      next fire time to plan: %s\n", s.NextFire.Format(time.RFC3339))
		}
	}
	if len(d.History) > 0 {
		fmt.Fprintf(w, "History:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, h := range d.History {
			reason := h.Reason
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", h.At.Format(time.RFC3339), h.Actor, h.Action, reason)
		}
		return tw.Flush()
	}
	return nil
}

func pauseCommand(env *cli.Env, paused bool) *cobra.Command {
	var (
		note, sched string
		asJSON      bool
	)
	use, short := "pause NAME [--note N] [--schedule ID]", "Pause a deployment or one of its schedules: no new runs, planned ones wait"
	if !paused {
		use, short = "resume NAME [--note N] [--schedule ID]", "Resume a deployment or one of its schedules (fire times passed while paused are skipped)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cli.ExactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := open(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer src.Close()
			d, err := src.Pause(cmd.Context(), args[0], paused, apitype.DeploymentPauseRequest{Note: note, Schedule: sched})
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, d)
			}
			what := "deployment " + d.Name
			if sched != "" {
				what = "schedule " + sched + " of deployment " + d.Name
			}
			verb := "paused"
			if !paused {
				verb = "resumed"
			}
			_, err = fmt.Fprintf(env.Stdout, "%s %s\n", verb, what)
			return err
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why, recorded in the deployment's history")
	cmd.Flags().StringVar(&sched, "schedule", "", "only this schedule `ID` (see: deployments show NAME)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the deployment as JSON")
	return cmd
}

func runCommand(env *cli.Env) *cobra.Command {
	var (
		paramsArg string
		kv        []string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "run NAME [--param k=v]... [--params JSON]",
		Short: "Start a run of a deployment now, with parameters over the deployment's, validated against the flow's schema",
		Args:  cli.ExactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var given json.RawMessage
			if paramsArg != "" || len(kv) > 0 {
				raw := ""
				if paramsArg != "" {
					var err error
					if raw, err = cli.ReadArg("--params", paramsArg); err != nil {
						return err
					}
				}
				obj, err := params.KVObject(raw, kv)
				if err != nil {
					return &cli.UsageError{Err: err}
				}
				given = obj
			}
			src, err := open(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer src.Close()
			run, err := src.Run(cmd.Context(), args[0], given)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, run)
			}
			if run.State != apitype.RunScheduled {
				fmt.Fprintf(env.Stderr, "baton: run %s is %s: see why with: %s runs show %s\n", run.ID, run.State, env.Cmd(), run.ID)
			}
			_, err = fmt.Fprintln(env.Stdout, run.ID)
			return err
		},
	}
	cmd.Flags().StringVar(&paramsArg, "params", "", "parameters as a JSON object, or @FILE")
	cmd.Flags().StringArrayVar(&kv, "param", nil, "a parameter `key=value` (repeatable; dotted keys set nested fields)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as JSON")
	return cmd
}

func deleteCommand(env *cli.Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a deployment; its runs not started yet are cancelled, its history stays",
		Args:  cli.ExactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := open(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer src.Close()
			if err := src.Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, map[string]any{"deleted": args[0]})
			}
			_, err = fmt.Fprintf(env.Stdout, "deleted deployment %s\n", args[0])
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func nextCommand(env *cli.Env) *cobra.Command {
	var (
		count  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "next NAME [--count N]",
		Short: "Preview the next fire times of a deployment's schedules, in UTC and in their time zone",
		Args:  cli.ExactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 || count > 1000 {
				return cli.Usagef("invalid --count %d: must be from 1 to 1000", count)
			}
			src, err := open(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer src.Close()
			n, err := src.Next(cmd.Context(), args[0], count)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, n)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "UTC\tLOCAL\tSCHEDULE")
			for _, f := range n.Fires {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", f.At.Format(time.RFC3339), f.Local, f.Schedule)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&count, "count", 10, "how many fire times")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the fire times as JSON")
	return cmd
}

// parseTime reads --from and --to: RFC 3339, or a date (midnight UTC).
func parseTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, cli.Usagef("%s is required: an RFC 3339 time such as 2026-01-02T03:00:00Z, or a date", flag)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, cli.Usagef("invalid %s %q: expected an RFC 3339 time such as 2026-01-02T03:00:00Z, or a date", flag, v)
}

func backfillCommand(env *cli.Env) *cobra.Command {
	var (
		from, to string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "backfill NAME --from T1 --to T2",
		Short: "Create the runs of the fire times from T1 (exclusive) to T2 (inclusive); those that exist are left alone",
		Args:  cli.ExactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseTime("--from", from)
			if err != nil {
				return err
			}
			t, err := parseTime("--to", to)
			if err != nil {
				return err
			}
			src, err := open(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer src.Close()
			res, err := src.Backfill(cmd.Context(), args[0], apitype.BackfillRequest{From: f, To: t})
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, res)
			}
			_, err = fmt.Fprintf(env.Stdout, "created %d runs; %d fire times of the range had a run already\n", len(res.Created), res.Existed)
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "start of the range (exclusive), RFC 3339 or a date")
	cmd.Flags().StringVar(&to, "to", "", "end of the range (inclusive), RFC 3339 or a date")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the created runs as JSON")
	return cmd
}
