package batoncmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/retention"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// localLeaseTimeout is how recently a worker must have been seen to be listed
// when reading the store directly (the server's default lease timeout).
const localLeaseTimeout = 15 * time.Second

// WorkersCommand returns `workers list`.
func WorkersCommand(env *cli.Env) *cobra.Command {
	cmd := cli.Group("workers", "List the live workers")
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the live workers: what they serve and the runs they hold",
		Args:  cli.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := listWorkers(cmd.Context(), env)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, ws)
			}
			return workersText(env.Stdout, ws, env.Clk().Now())
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of worker objects")
	cmd.AddCommand(list)
	return cmd
}

func listWorkers(ctx context.Context, env *cli.Env) ([]apitype.Worker, error) {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return nil, err
		}
		ws, err := c.Workers(ctx)
		if err != nil {
			return nil, cli.APIError(err, "")
		}
		if ws == nil {
			ws = []apitype.Worker{}
		}
		return ws, nil
	}
	st, _, err := env.OpenStoreForReading(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	workers, err := st.WorkerList(ctx, env.Clk().Now().Add(-localLeaseTimeout))
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	held := map[string][]string{}
	for _, state := range store.LeasedRunStates {
		runs, err := st.RunList(ctx, store.RunListParams{State: state, Limit: 10000})
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		for _, r := range runs {
			if r.WorkerID != "" {
				held[r.WorkerID] = append(held[r.WorkerID], r.ID)
			}
		}
	}
	out := make([]apitype.Worker, len(workers))
	for i, w := range workers {
		out[i] = api.WorkerJSON(w, held[w.ID])
	}
	return out, nil
}

func workersText(w io.Writer, ws []apitype.Worker, now time.Time) error {
	if len(ws) == 0 {
		_, err := fmt.Fprintln(w, "No live workers.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tHOST\tQUEUES\tFLOWS\tRUNS\tLAST SEEN")
	for _, wk := range ws {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", wk.ID, cli.OneLine(wk.Name), cli.OneLine(wk.Host),
			cli.OneLine(strings.Join(wk.Queues, ",")), cli.Truncate(cli.OneLine(strings.Join(wk.Flows, ",")), 60),
			len(wk.Runs), adminAgo(wk.LastSeen, now))
	}
	return tw.Flush()
}

// adminAgo formats how long ago t was: "3s ago"; "-" for zero.
func adminAgo(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Minute)
	}
	return d.String() + " ago"
}

// QueuesCommand returns `queues list|show|create|update|pause|resume`.
func QueuesCommand(env *cli.Env) *cobra.Command {
	cmd := cli.Group("queues", "Work queues: depths, priority and pause")
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the queues with their scheduled and running runs and task runs",
		Args:  cli.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			qs, err := listQueues(cmd.Context(), env)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, qs)
			}
			return queuesText(env.Stdout, qs, env.Clk().Now())
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of queue objects")
	cmd.AddCommand(list)
	addQueueCommands(cmd, env)
	return cmd
}

func listQueues(ctx context.Context, env *cli.Env) ([]apitype.Queue, error) {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return nil, err
		}
		qs, err := c.Queues(ctx)
		if err != nil {
			return nil, cli.APIError(err, "")
		}
		if qs == nil {
			qs = []apitype.Queue{}
		}
		return qs, nil
	}
	st, _, err := env.OpenStoreForReading(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out, err := api.QueueList(ctx, st, env.Clk().Now().Add(-store.LiveWorkerWindow))
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	return out, nil
}

func queuesText(w io.Writer, qs []apitype.Queue, now time.Time) error {
	if len(qs) == 0 {
		_, err := fmt.Fprintln(w, "No queues: no runs were created on any queue.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tPRIORITY\tLIMIT\tSCHEDULED\tRUNNING\tTASKS PENDING\tTASKS RUNNING\tOLDEST WAITING\tPAUSED")
	for _, q := range qs {
		oldest := "-"
		if q.OldestWaiting != nil {
			oldest = cli.Time(*q.OldestWaiting) + " (" + adminAgo(*q.OldestWaiting, now) + ")"
		}
		paused := "-"
		if q.Paused {
			paused = "paused by " + cli.OneLine(q.PausedBy)
			if q.PauseNote != "" {
				paused += ": " + cli.Truncate(cli.OneLine(q.PauseNote), 60)
			}
		}
		lim := "-"
		if q.Limit > 0 {
			lim = strconv.Itoa(q.Limit)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", cli.OneLine(q.Queue), q.Priority, lim, q.RunsScheduled, q.RunsRunning,
			q.TasksPending+q.TasksAwaitingSlot, q.TasksRunning, oldest, paused)
	}
	return tw.Flush()
}

// RetentionCommand returns `retention run`.
func RetentionCommand(env *cli.Env) *cobra.Command {
	cmd := cli.Group("retention", "Delete old finished runs")
	var (
		olderThan string
		asJSON    bool
	)
	run := &cobra.Command{
		Use:   "run --older-than AGE",
		Short: "Delete finished runs that ended more than AGE ago (e.g. 30d, 12h), with their logs and blobs",
		Long: "Delete the runs in a final state (COMPLETED, FAILED, CANCELLED, CRASHED) that ended more\n" +
			"than AGE ago, with their task runs, events, logs and the blobs only they used. Through the\n" +
			"server given by --server (or BATON_SERVER), else directly on the store.",
		Args: cli.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			age, err := api.ParseAge(olderThan)
			if err != nil {
				return cli.Usagef("--older-than: %v", err)
			}
			var res apitype.RetentionResult
			if env.ServerURL() != "" {
				c, err := cli.Client(env)
				if err != nil {
					return err
				}
				if res, err = c.Retention(ctx, olderThan); err != nil {
					return cli.APIError(err, "")
				}
			} else {
				st, blobs, err := env.OpenStoreForReading(ctx)
				if err != nil {
					return err
				}
				defer st.Close()
				if res, err = retention.Run(ctx, st, blobs, env.Clk().Now().Add(-age)); err != nil {
					return fmt.Errorf("retention: %w (deleted %d runs before the error)", err, res.DeletedRuns)
				}
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, res)
			}
			_, err = fmt.Fprintf(env.Stdout, "Deleted %s and %s (finished more than %s ago).\n",
				adminPlural(res.DeletedRuns, "run"), adminPlural(res.DeletedBlobs, "blob"), olderThan)
			return err
		},
	}
	run.Flags().StringVar(&olderThan, "older-than", "", "delete runs that ended more than this long ago: 30d, 12h, 90m")
	_ = run.MarkFlagRequired("older-than")
	run.Flags().BoolVar(&asJSON, "json", false, `print {"deleted_runs": N, "deleted_blobs": M}`)
	cmd.AddCommand(run)
	return cmd
}

func adminPlural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
