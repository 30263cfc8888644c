package runscmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// The commands in this file change runs, which only a server does: they
// need --server or BATON_SERVER.

func runsCreateCommand(env *cli.Env) *cobra.Command {
	var (
		paramsArg, queue, key string
		asJSON                bool
	)
	cmd := &cobra.Command{
		Use:   "create FLOW",
		Short: "Create a run of a flow on a server; a worker serving its queue executes it",
		Long: "Create a run of FLOW on the server. It is SCHEDULED until a worker serving the flow on\n" +
			"its queue claims it. Prints the run's id, or the run object with --json. With\n" +
			"--idempotency-key, creating again with the same key returns the same run.",
		Args: cli.ExactArgs(1, "one FLOW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cli.RequireClient("runs create", env)
			if err != nil {
				return err
			}
			if strings.TrimSpace(args[0]) == "" {
				return cli.Usagef("a flow name is required")
			}
			// Checked here too: JSON encoding would quietly replace
			// invalid UTF-8 before the server could refuse it.
			for _, f := range []struct{ name, value string }{{"the flow name", args[0]}, {"--queue", queue}, {"--idempotency-key", key}} {
				if err := store.CheckIdentifier(f.name, f.value); err != nil {
					return &cli.UsageError{Err: err}
				}
			}
			req := apitype.CreateRunRequest{Flow: args[0], Queue: queue, IdempotencyKey: key}
			if paramsArg != "" {
				raw, err := cli.ReadArg("--params", paramsArg)
				if err != nil {
					return err
				}
				// The user binary's parser, for the same messages (line and
				// column of a syntax error).
				if err := params.CheckJSON([]byte(raw), "--params"); err != nil {
					return &cli.UsageError{Err: err}
				}
				req.Parameters = json.RawMessage(raw)
			}
			run, created, err := c.CreateRun(cmd.Context(), req)
			if err != nil {
				return cli.APIError(err, "")
			}
			if !created {
				fmt.Fprintf(env.Stderr, "baton: idempotency key %q matches run %s, created before (%s)\n", key, run.ID, run.State)
			}
			runsWaiting(env, runsStillWaiting(cmd.Context(), c, run))
			if asJSON {
				return cli.WriteJSON(env.Stdout, run)
			}
			_, err = fmt.Fprintln(env.Stdout, run.ID)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&paramsArg, "params", "", "parameters as a JSON object, or @FILE to read them from a file")
	f.StringVar(&queue, "queue", "", "queue of the run (default \""+apitype.DefaultQueue+"\")")
	f.StringVar(&key, "idempotency-key", "", "create the run only once for this key; again, return the same run")
	f.BoolVar(&asJSON, "json", false, "print the created run as a JSON object")
	return cmd
}

// runsRecheckFor is how long `runs create` watches a new run that a live
// worker serves before it says the run is waiting: an idle worker claims it
// within milliseconds.
const runsRecheckFor = time.Second

// runsStillWaiting (of runs create and runs retry) returns run as it is
// once a worker serving it had a moment to claim it. A SCHEDULED run whose
// document has no waiting reason (the create response never has one) is
// read at once for it; a run no live worker serves is then returned. While
// the server says it waits for a free slot on live workers, it is read
// again until it leaves SCHEDULED or runsRecheckFor has passed.
func runsStillWaiting(ctx context.Context, c *client.Client, run apitype.Run) apitype.Run {
	if run.State != string(store.RunScheduled) {
		return run
	}
	if run.WaitingReason == "" {
		var done bool
		if run, done = runsReread(ctx, c, run); done {
			return run
		}
	}
	if run.WaitingReason == "" || strings.HasPrefix(run.WaitingReason, "no live worker") {
		return run
	}
	deadline := time.Now().Add(runsRecheckFor)
	// An idle worker claims at once: the first read usually settles it. The
	// reads then space out, as each reads the run's task runs too.
	for wait := 50 * time.Millisecond; time.Now().Before(deadline); wait *= 2 {
		t := time.NewTimer(min(wait, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return run
		case <-t.C:
		}
		var done bool
		if run, done = runsReread(ctx, c, run); done {
			return run
		}
	}
	return run
}

// runsReread reads a SCHEDULED run again: its new document, done, once it
// left SCHEDULED; run itself, done, when the read fails; else run with the
// server's current waiting reason.
func runsReread(ctx context.Context, c *client.Client, run apitype.Run) (apitype.Run, bool) {
	d, err := c.GetRun(ctx, run.ID)
	switch {
	case err != nil:
		return run, true
	case d.State != string(store.RunScheduled):
		return d.Run, true
	}
	run.WaitingReason = d.WaitingReason
	return run, false
}

// runsWaiting tells on stderr why a SCHEDULED run has not started.
func runsWaiting(env *cli.Env, run apitype.Run) {
	if run.State == string(store.RunScheduled) && run.WaitingReason != "" &&
		!strings.HasPrefix(run.WaitingReason, api.FreeSlotPrefix) {
		fmt.Fprintf(env.Stderr, "baton: run %s is waiting: %s\n", run.ID, run.WaitingReason)
	}
}

func runsCancelCommand(env *cli.Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cancel RUN_ID",
		Short: "Cancel a run on a server",
		Long: "Cancel a run. A run that has not started is CANCELLED at once; a running one is\n" +
			"CANCELLING until its worker, or the local process running it, stops it.\n" +
			"A finished run cannot be cancelled; a subflow is cancelled through its parent.",
		Args: cli.ExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cli.RequireClient("runs cancel", env)
			if err != nil {
				return err
			}
			run, err := c.CancelRun(cmd.Context(), args[0])
			if err != nil {
				return cli.APIError(err, args[0])
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, run)
			}
			msg := ""
			if run.State == string(store.RunCancelling) {
				msg = " (its worker is stopping it)"
				if run.WorkerID == "" {
					msg = " (the process running it stops it within a second)"
				}
			}
			_, err = fmt.Fprintf(env.Stdout, "run %s %s%s\n", run.ID, run.State, msg)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as a JSON object")
	return cmd
}

func runsRetryCommand(env *cli.Env) *cobra.Command {
	var asJSON bool
	var paramsArg string
	cmd := &cobra.Command{
		Use:   "retry RUN_ID [--params JSON|@file]",
		Short: "Schedule a new attempt of a FAILED, CANCELLED or CRASHED run on a server",
		Long: "Schedule a new attempt of a FAILED, CANCELLED or CRASHED run. A worker executes it,\n" +
			"reusing the steps that completed in earlier attempts with the same task and input.\n" +
			"--params edits the run's parameters for this attempt and later ones: the server merges\n" +
			"them over the run's and validates them as for a new run, and records the edit with the\n" +
			"old and new values and who asked (the OS user, USER@HOST, and the client's address).",
		Args: cli.ExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cli.RequireClient("runs retry", env)
			if err != nil {
				return err
			}
			req := apitype.RetryRunRequest{}
			if paramsArg != "" {
				raw, err := cli.ReadArg("--params", paramsArg)
				if err != nil {
					return err
				}
				// The user binary's parser, for the same messages.
				if err := params.CheckJSON([]byte(raw), "--params"); err != nil {
					return &cli.UsageError{Err: err}
				}
				req.Parameters, req.By = json.RawMessage(raw), engine.CurrentUser()
			}
			run, err := c.RetryRunWith(cmd.Context(), args[0], req)
			if err != nil {
				return cli.APIError(err, args[0])
			}
			runsWaiting(env, runsStillWaiting(cmd.Context(), c, run))
			if asJSON {
				return cli.WriteJSON(env.Stdout, run)
			}
			_, err = fmt.Fprintf(env.Stdout, "run %s %s (attempt %d)\n", run.ID, run.State, run.Attempt)
			return err
		},
	}
	cmd.Flags().StringVar(&paramsArg, "params", "", "change parameters: a JSON object merged over the run's, or @FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as a JSON object")
	return cmd
}
