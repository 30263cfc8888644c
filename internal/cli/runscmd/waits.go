package runscmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// The commands that give waiting runs what they wait for: `runs resume`
// (input for WaitForInput, the resume of Pause) and `events send`
// (WaitForEvent). Both work on the local store and through a server, with
// the same validation and messages (api.SendInput, api.SendEvent).

func runsResumeCommand(env *cli.Env) *cobra.Command {
	var (
		key, input string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "resume RUN_ID [--key KEY] [--input JSON|@file]",
		Short: "Send input to a run's wait, or resume a paused run",
		Long: "Give a PAUSED run what it waits for. With --input, the value for its WaitForInput of\n" +
			"--key (the run's only open wait when --key is not given): it is validated against the\n" +
			"wait's JSON Schema, and refused with every violation listed (exit 2) before anything\n" +
			"is recorded. Without --input, the resume of a Pause. Input for a key the run does not\n" +
			"wait for yet is kept for its first wait of the key. Who sent it (the OS user, or --as)\n" +
			"is in the run's history.",
		Args: cli.ExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.InputRequest{Key: key}
			if cmd.Flags().Changed("input") {
				raw, err := cli.ReadArg("--input", input)
				if err != nil {
					return err
				}
				if !json.Valid([]byte(raw)) {
					return cli.Usagef("--input is not JSON: %s", cli.Truncate(cli.OneLine(raw), 80))
				}
				req.Value = json.RawMessage(raw)
			}
			res, err := sendInput(cmd.Context(), env, args[0], req)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, res)
			}
			switch {
			case res.Kept:
				_, err = fmt.Fprintf(env.Stdout, "input for %s kept: run %s does not wait for it yet, and gets it when it does\n", res.Key, res.RunID)
			case req.Value == nil:
				_, err = fmt.Fprintf(env.Stdout, "run %s resumed (%s)\n", res.RunID, res.Step)
			default:
				_, err = fmt.Fprintf(env.Stdout, "input for %s delivered to run %s (%s)\n", res.Key, res.RunID, res.Step)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the `KEY` of the wait (default: the run's only open wait)")
	cmd.Flags().StringVar(&input, "input", "", "the input: JSON, or @FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as a JSON object")
	return cmd
}

// sendInput delivers input through the server, or to the local store.
func sendInput(ctx context.Context, env *cli.Env, runID string, req apitype.InputRequest) (apitype.InputResult, error) {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return apitype.InputResult{}, err
		}
		res, err := c.SendInput(ctx, runID, req)
		if err != nil {
			return res, cli.APIError(err, runID)
		}
		return res, nil
	}
	if err := store.CheckIdentifier("run id", runID); err != nil {
		return apitype.InputResult{}, &cli.UsageError{Err: err}
	}
	st, _, err := env.OpenStore(ctx)
	if err != nil {
		return apitype.InputResult{}, err
	}
	defer st.Close()
	res, err := api.SendInput(ctx, st, runID, req, env.Actor())
	if err != nil {
		return res, localInputError(runID, err)
	}
	if r, gerr := st.RunGet(ctx, runID); gerr == nil && !res.Kept {
		orphanHint(env, r)
	}
	return res, nil
}

// localInputError maps refusals on the local store as the API's statuses
// map them for a server (exit 2 for what the user can mend).
func localInputError(runID string, err error) error {
	var ve *params.ValidationError
	var bad *api.BadInputError
	switch {
	case errors.As(err, &ve):
		return &cli.UsageError{Err: errors.New(api.InputErrorMessage(runID, err))}
	case errors.As(err, &bad), errors.Is(err, store.ErrConflict):
		return &cli.UsageError{Err: err}
	case errors.Is(err, store.ErrNotFound):
		return cli.UnknownRun(runID)
	}
	return err
}

// orphanHint tells how to continue a local run that is PAUSED with no
// process waiting in it.
func orphanHint(env *cli.Env, r store.Run) {
	if r.State != store.RunPaused || r.WorkerID != "" || r.Queue != "" {
		return
	}
	owner := engine.Process{Host: r.OwnerHost, PID: r.OwnerPID, Start: r.OwnerStart}
	if alive, known := owner.Alive(); alive || !known {
		return
	}
	fmt.Fprintf(env.Stderr, "baton: the process that ran %s (pid %d) is gone: continue the run with the program that defines flow %s: PROGRAM resume %s\n",
		r.ID, r.OwnerPID, r.Flow, r.ID)
}

// EventsCommand is `events send`, in both command lines.
func EventsCommand(env *cli.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Send events to the runs that wait for them",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown command %q for %q; see: %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	var (
		payload string
		asJSON  bool
	)
	send := &cobra.Command{
		Use:   "send NAME [--payload JSON|@file]",
		Short: "Send an event: it wakes the runs waiting for NAME whose match its payload fits",
		Long: "Send an event named NAME with a JSON payload. Every run waiting for NAME\n" +
			"(WaitForEvent) whose Match the payload fits gets it; an event no run waits for is\n" +
			"kept for 24 hours for waits that begin later. Works on the local store and through a server.",
		Args: cli.ExactArgs(1, "one event NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.EventRequest{Name: args[0]}
			if cmd.Flags().Changed("payload") {
				raw, err := cli.ReadArg("--payload", payload)
				if err != nil {
					return err
				}
				if !json.Valid([]byte(raw)) {
					return cli.Usagef("--payload is not JSON: %s", cli.Truncate(cli.OneLine(raw), 80))
				}
				req.Payload = json.RawMessage(raw)
			}
			res, err := sendEvent(cmd.Context(), env, req)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, res)
			}
			if len(res.Delivered) == 0 {
				_, err = fmt.Fprintf(env.Stdout, "event %s #%d sent: no run waits for it; it is kept 24 hours for waits that begin later\n", req.Name, res.Seq)
				return err
			}
			fmt.Fprintf(env.Stdout, "event %s #%d delivered to %d wait(s):\n", req.Name, res.Seq, len(res.Delivered))
			for _, d := range res.Delivered {
				fmt.Fprintf(env.Stdout, "  run %s (%s)\n", d.RunID, d.Step)
			}
			return nil
		},
	}
	send.Flags().StringVar(&payload, "payload", "", "the event's payload: JSON, or @FILE")
	send.Flags().BoolVar(&asJSON, "json", false, "print the result as a JSON object")
	cmd.AddCommand(send)
	return cmd
}

// sendEvent sends an event through the server, or to the local store.
func sendEvent(ctx context.Context, env *cli.Env, req apitype.EventRequest) (apitype.EventResult, error) {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return apitype.EventResult{}, err
		}
		res, err := c.SendEvent(ctx, req)
		if err != nil {
			return res, cli.APIError(err, "")
		}
		return res, nil
	}
	st, _, err := env.OpenStore(ctx)
	if err != nil {
		return apitype.EventResult{}, err
	}
	defer st.Close()
	res, err := api.SendEvent(ctx, st, req, env.Actor())
	if err != nil {
		return res, localInputError("", err)
	}
	return res, nil
}
