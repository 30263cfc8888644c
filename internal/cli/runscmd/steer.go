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
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// Steering a run from outside: `runs pause` (pause at the next step
// boundary) and `runs update` (change the parameters the flow reads with
// baton.Settings). Both work on the local store and through a server, with
// the same validation and messages (api.PauseRun, api.UpdateRun).

func runsPauseCommand(env *cli.Env) *cobra.Command {
	var (
		reason string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "pause RUN_ID [--reason R]",
		Short: "Pause a running run at its next step boundary",
		Long: "Ask a running run to pause. Before the next step it starts, its engine records a pause\n" +
			"(as if the flow had called baton.Pause there, with who asked and --reason as its prompt)\n" +
			"and the run goes PAUSED: on a worker it holds no slot. `baton runs resume RUN_ID` resumes\n" +
			"it. A run that is PAUSED already is left as it is; a finished one cannot be paused (exit 2).",
		Args: cli.ExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.PauseRunRequest{Reason: reason}
			run, err := steerRun(cmd.Context(), env, args[0],
				func(ctx context.Context, st store.Store, who store.Actor) (store.Run, error) {
					return api.PauseRun(ctx, st, args[0], req, who)
				},
				func(ctx context.Context) (apitype.Run, error) {
					c, err := cli.Client(env)
					if err != nil {
						return apitype.Run{}, err
					}
					return c.PauseRun(ctx, args[0], req)
				})
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, run)
			}
			switch {
			case run.PauseRequest != nil:
				_, err = fmt.Fprintf(env.Stdout, "run %s pauses at its next step (asked by %s); resume it with: baton runs resume %s\n",
					run.ID, run.PauseRequest.By, run.ID)
			default:
				_, err = fmt.Fprintf(env.Stdout, "run %s is %s; resume it with: baton runs resume %s\n", run.ID, run.State, run.ID)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown with the pause and kept in the history)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as a JSON object")
	return cmd
}

func runsUpdateCommand(env *cli.Env) *cobra.Command {
	var (
		kv                []string
		paramsArg, reason string
		asJSON            bool
	)
	cmd := &cobra.Command{
		Use:   "update RUN_ID [--param key=value]... [--params JSON|@file] [--reason R]",
		Short: "Change the parameters of a running or paused run",
		Long: "Change the settings of a running or paused run: --params (a JSON object) and --param\n" +
			"key=value (repeatable; the value is JSON, or a string when it is not JSON; dotted keys\n" +
			"for nested fields) are merged over the run's current parameters and validated against\n" +
			"the flow's parameter schema as a retry's edited parameters are (exit 2 naming the\n" +
			"parameter, nothing recorded). The change, who made it and the values before and after\n" +
			"are in the run's history; the flow reads the new values with baton.Settings at its next\n" +
			"call of it. A finished run's settings cannot change.",
		Args: cli.ExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw := ""
			if paramsArg != "" {
				var err error
				if raw, err = cli.ReadArg("--params", paramsArg); err != nil {
					return err
				}
			}
			change, err := params.KVObject(raw, kv)
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			req := apitype.UpdateRunRequest{Parameters: change, Reason: reason}
			run, err := steerRun(cmd.Context(), env, args[0],
				func(ctx context.Context, st store.Store, who store.Actor) (store.Run, error) {
					return api.UpdateRun(ctx, st, args[0], req, who,
						func(ctx context.Context, run store.Run, given json.RawMessage) (json.RawMessage, error) {
							return api.EditParams(ctx, st, run, given)
						})
				},
				func(ctx context.Context) (apitype.Run, error) {
					c, err := cli.Client(env)
					if err != nil {
						return apitype.Run{}, err
					}
					return c.UpdateRun(ctx, args[0], req)
				})
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, run)
			}
			_, err = fmt.Fprintf(env.Stdout, "run %s (%s) now has parameters %s\n", run.ID, run.State, run.Parameters)
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&kv, "param", "p", nil, "change one parameter (repeatable; dotted keys for nested fields)")
	cmd.Flags().StringVar(&paramsArg, "params", "", "change parameters: a JSON object merged over the run's, or @FILE")
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the history)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as a JSON object")
	return cmd
}

// steerRun applies a change to run runID through the server, or to the
// local store as the OS user, and returns the run's view.
func steerRun(ctx context.Context, env *cli.Env, runID string,
	local func(context.Context, store.Store, store.Actor) (store.Run, error),
	remote func(context.Context) (apitype.Run, error)) (apitype.Run, error) {
	if env.ServerURL() != "" {
		run, err := remote(ctx)
		if err != nil {
			return run, cli.APIError(err, runID)
		}
		return run, nil
	}
	if err := store.CheckIdentifier("run id", runID); err != nil {
		return apitype.Run{}, &cli.UsageError{Err: err}
	}
	st, blobs, err := env.OpenStore(ctx)
	if err != nil {
		return apitype.Run{}, err
	}
	defer st.Close()
	r, err := local(ctx, st, env.Actor())
	if err != nil {
		var pe *params.Error
		if errors.As(err, &pe) {
			return apitype.Run{}, &cli.UsageError{Err: err}
		}
		return apitype.Run{}, localInputError(runID, err)
	}
	return api.RunJSON(r, blobs), nil
}
