// Package progcmd is the command line that baton.Main gives a user's
// program: run, retry, flows and task execute the program's flows in its
// process on the store given by --db; worker executes them for a server;
// runs and version are the shared commands. It links the SQLite backend and
// the HTTP client, never the server or another database driver.
package progcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/runscmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// TaskFlowPrefix names the runs that `task TASK` records for a task run alone.
const TaskFlowPrefix = "task:"

// Program is what a user's binary defines: its flows and tasks.
type Program struct {
	Name  string
	Flows []*engine.FlowDef
	Tasks []*engine.TaskDef
	// Deployments are the program's baton.Deploy declarations, registered
	// by `deploy` and when `worker` starts.
	Deployments []apitype.DeploymentRequest
}

// Definitions returns the engine definitions of flows defined with package
// baton (baton.AnyFlow values; it panics on anything else) and of every
// task the program defined. Package baton sets it in its init function: it
// cannot export it without putting engine types in its public API. Use
// ProgramOf.
var Definitions func(flows ...any) ([]*engine.FlowDef, []*engine.TaskDef)

// ProgramOf returns the program named name that hosts the given flows
// (baton.AnyFlow values) and every task the program defined: how the baton
// command's dev server, tests and benchmarks host flows written with the
// SDK. The caller has imported package baton, which set Definitions.
func ProgramOf[F any](name string, flows ...F) Program {
	in := make([]any, len(flows))
	for i, f := range flows {
		in[i] = f
	}
	defs, tasks := Definitions(in...)
	prog := Program{Name: name, Flows: defs, Tasks: tasks}
	if Deployments != nil {
		prog.Deployments = Deployments()
	}
	return prog
}

// runOf reads run id and the definition of its flow, which this program
// must define.
func (p Program) runOf(ctx context.Context, env *cli.Env, eng *engine.Engine, id string) (store.Run, *engine.FlowDef, error) {
	run, err := eng.Store().RunGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return run, nil, cli.Usagef("unknown run id %q; list runs with: %s runs list", id, env.Cmd())
	}
	if err != nil {
		return run, nil, err
	}
	def, err := p.flow(run.Flow)
	if err != nil {
		return run, nil, cli.Usagef("run %s is a run of flow %q, which this program does not define", run.ID, run.Flow)
	}
	return run, def, nil
}

func (p Program) flow(name string) (*engine.FlowDef, error) {
	for _, f := range p.Flows {
		if f.Name == name {
			return f, nil
		}
	}
	if t, ok := strings.CutPrefix(name, TaskFlowPrefix); ok {
		if td, err := p.task(t); err == nil {
			return taskFlow(td), nil
		}
	}
	names := make([]string, len(p.Flows))
	for i, f := range p.Flows {
		names[i] = f.Name
	}
	return nil, cli.Usagef("unknown flow %q; this program defines: %s", name, strings.Join(names, ", "))
}

func (p Program) task(name string) (*engine.TaskDef, error) {
	names := make([]string, 0, len(p.Tasks))
	for _, t := range p.Tasks {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return nil, cli.Usagef("unknown task %q; this program defines: %s", name, strings.Join(names, ", "))
}

// taskFlow wraps a task in a one-step flow so that running it alone is
// recorded (and retried) like any run.
func taskFlow(td *engine.TaskDef) *engine.FlowDef {
	return &engine.FlowDef{
		Name:       TaskFlowPrefix + td.Name,
		ParamsType: td.InputType,
		Body: func(fc *engine.FlowCtx, input json.RawMessage) (any, error) {
			f := fc.Submit(engine.Call{
				Task: td, InputJSON: input,
				Fn:     func(ctx context.Context) (any, error) { return td.Invoke(ctx, input) },
				Decode: func(raw json.RawMessage) (any, error) { return raw, nil },
			})
			return f.Wait(fc.Context())
		},
	}
}

// Main runs the command line of a user's binary and returns its exit code.
func Main(ctx context.Context, args []string, prog Program, env *cli.Env) int {
	if env.Command == "" {
		env.Command = cli.SelfCommand(prog.Name)
	}
	root := &cobra.Command{
		Use:           prog.Name,
		Short:         "Run and inspect this program's Baton flows",
		Long:          "With no command, runs the first flow with its default parameters.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(prog.Flows) == 0 {
				return cli.Usagef("this program defines no flows")
			}
			return runFlow(cmd.Context(), env, prog, prog.Flows[0], "", nil, false)
		},
	}
	runs := runscmd.Command(env)
	runs.PersistentFlags().StringVar(&env.Server, "server", env.Server,
		"base `URL` of a Baton server to read from, such as http://127.0.0.1:8420 (default $BATON_SERVER; none: read the store)")
	cli.AsFlag(env, root.PersistentFlags())
	events := runscmd.EventsCommand(env)
	events.PersistentFlags().StringVar(&env.Server, "server", env.Server,
		"base `URL` of a Baton server to send to (default $BATON_SERVER; none: the store)")
	root.AddCommand(runCommand(env, prog), retryCommand(env, prog), resumeCommand(env, prog), flowsCommand(env, prog),
		taskCommand(env, prog), runs, events, workerCommand(env, prog), deployCommand(env, prog), cli.VersionCommand(env))
	return cli.Execute(ctx, root, args, env)
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("unexpected argument %q; see %s --help", args[0], cmd.CommandPath())
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return cli.Usagef("%s takes %s; usage: %s", cmd.CommandPath(), what, cmd.UseLine())
		}
		return nil
	}
}

func runCommand(env *cli.Env, prog Program) *cobra.Command {
	var kv []string
	var paramsArg string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run FLOW [--param key=value]... [--params JSON|@file]",
		Short: "Run a flow in this process and wait for it to end",
		Args:  exactArgs(1, "one flow name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			def, err := prog.flow(args[0])
			if err != nil {
				return err
			}
			return runFlow(cmd.Context(), env, prog, def, paramsArg, kv, asJSON)
		},
	}
	cmd.Flags().StringArrayVarP(&kv, "param", "p", nil, "set one parameter (repeatable; dotted keys for nested fields)")
	cmd.Flags().StringVar(&paramsArg, "params", "", "parameters as a JSON object, or @FILE to read them from a file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the finished run as JSON")
	return cmd
}

func runFlow(ctx context.Context, env *cli.Env, prog Program, def *engine.FlowDef, paramsArg string, kv []string, asJSON bool) error {
	paramsJSON, err := cli.ReadArg("--params", paramsArg)
	if err != nil {
		return err
	}
	p, err := buildParams(def, paramsJSON, kv)
	if err != nil {
		return err
	}
	return withEngine(ctx, env, func(eng *engine.Engine, blobs *blob.Store) error {
		out, err := eng.Start(ctx, def, p)
		if err != nil {
			return err
		}
		return report(env, blobs, out, asJSON)
	})
}

func buildParams(def *engine.FlowDef, paramsJSON string, kv []string) (json.RawMessage, error) {
	if def.ParamsType == nil {
		return json.RawMessage("null"), nil
	}
	p, err := params.Build(def.ParamsType, def.Defaults, paramsJSON, kv)
	if err != nil {
		return nil, &cli.UsageError{Err: fmt.Errorf("flow %s: %w", def.Name, err)}
	}
	return p, nil
}

func withEngine(ctx context.Context, env *cli.Env, fn func(*engine.Engine, *blob.Store) error) error {
	st, blobs, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	eng, err := engine.New(engine.Config{
		Store: st, Blobs: blobs, LogOutput: env.Stderr, Actor: env.Actor(),
		OnRunStart: func(r store.Run) {
			fmt.Fprintf(env.Stderr, "baton: run %s of flow %s started (attempt %d)\n", r.ID, r.Flow, r.Attempt)
		},
		OnTaskFailure: cli.PrintTaskFailure(env),
	})
	if err != nil {
		return err
	}
	defer eng.Close()
	return fn(eng, blobs)
}

// report prints the end of a run and turns a run that did not complete into
// an error (exit code 1).
func report(env *cli.Env, blobs *blob.Store, out engine.Outcome, asJSON bool) error {
	r := out.Run
	took := r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond)
	fmt.Fprintf(env.Stderr, "baton: run %s %s (attempt %d, %s)\n", r.ID, r.State, r.Attempt, took)
	if asJSON {
		b, err := json.MarshalIndent(api.RunJSON(r, blobs), "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, string(b))
	} else if r.State == store.RunCompleted {
		raw := r.Result
		if r.ResultRef != "" {
			b, err := blobs.Get(r.ResultRef)
			if err != nil {
				return fmt.Errorf("run %s COMPLETED, but its result (blob %s) cannot be read: %w", r.ID, r.ResultRef, err)
			}
			raw = b
		}
		fmt.Fprintln(env.Stdout, string(raw))
	}
	if r.State == store.RunPaused {
		return &cli.PausedError{Msg: fmt.Sprintf("run %s is PAUSED: it waits (see %s runs show %s); give it what it waits for "+
			"(runs resume %s --key KEY --input JSON, or events send NAME), then continue it here with: %s resume %s",
			r.ID, env.Cmd(), r.ID, r.ID, env.Cmd(), r.ID)}
	}
	if r.State != store.RunCompleted {
		return &runError{run: r, err: out.Err}
	}
	return nil
}

func resumeCommand(env *cli.Env, prog Program) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "resume RUN_ID",
		Short: "Continue a PAUSED run in this process from its journal",
		Long: "Continue a PAUSED run whose process stopped waiting for it (interrupted, or killed):\n" +
			"its recorded steps are reused, the waits that got what they waited for return it, and\n" +
			"the others wait again in this process. To give a run its input, use runs resume.",
		Args: exactArgs(1, "one run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return withEngine(ctx, env, func(eng *engine.Engine, blobs *blob.Store) error {
				run, def, err := prog.runOf(ctx, env, eng, args[0])
				if err != nil {
					return err
				}
				out, err := eng.Resume(ctx, def, run.ID)
				if errors.Is(err, store.ErrConflict) || errors.Is(err, engine.ErrRunActive) {
					return &cli.UsageError{Err: err}
				}
				if err != nil {
					return err
				}
				return report(env, blobs, out, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run as JSON when it ends or waits again")
	return cmd
}

// runError is a run that ended in another state than COMPLETED.
type runError struct {
	run store.Run
	err error
}

func (e *runError) Error() string {
	return fmt.Sprintf("run %s %s: %v (resume it with: retry %s)", e.run.ID, e.run.State, e.err, e.run.ID)
}

func retryCommand(env *cli.Env, prog Program) *cobra.Command {
	var asJSON bool
	var kv []string
	var paramsArg string
	cmd := &cobra.Command{
		Use:   "retry RUN_ID [--param key=value]... [--params JSON|@file]",
		Short: "Start a new attempt of a FAILED, CANCELLED or CRASHED run, reusing its completed steps",
		Long: "Start a new attempt of a FAILED, CANCELLED or CRASHED run in this process. Every step\n" +
			"that completed before with the same task and input is reused; the others run.\n" +
			"--params and --param edit the run's parameters for this attempt and later ones: they are\n" +
			"merged over the run's parameters (as run merges them over the defaults) and validated the\n" +
			"same way; steps whose input changed run again. The edit is recorded on the run, with the\n" +
			"old and new values and the OS user (USER@HOST).",
		Args: exactArgs(1, "one run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			paramsJSON, err := cli.ReadArg("--params", paramsArg)
			if err != nil {
				return err
			}
			return withEngine(ctx, env, func(eng *engine.Engine, blobs *blob.Store) error {
				run, def, err := prog.runOf(ctx, env, eng, args[0])
				if err != nil {
					return err
				}
				var opts engine.RetryOptions
				if strings.TrimSpace(paramsJSON) != "" || len(kv) > 0 {
					if def.ParamsType == nil {
						return cli.Usagef("flow %s takes no parameters", def.Name)
					}
					edited, err := params.Edit(def.ParamsType, run.Parameters, paramsJSON, kv)
					if err != nil {
						return &cli.UsageError{Err: fmt.Errorf("flow %s: %w", def.Name, err)}
					}
					if !params.SameJSON(edited, run.Parameters) {
						opts = engine.RetryOptions{Parameters: edited, By: engine.CurrentUser()}
					}
				}
				out, err := eng.Retry(ctx, def, run.ID, opts)
				if errors.Is(err, store.ErrConflict) || errors.Is(err, engine.ErrRunActive) {
					return &cli.UsageError{Err: err}
				}
				if err != nil {
					return err
				}
				return report(env, blobs, out, asJSON)
			})
		},
	}
	cmd.Flags().StringArrayVarP(&kv, "param", "p", nil, "change one parameter (repeatable; dotted keys for nested fields)")
	cmd.Flags().StringVar(&paramsArg, "params", "", "change parameters: a JSON object merged over the run's, or @FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the finished run as JSON")
	return cmd
}

func flowsCommand(env *cli.Env, prog Program) *cobra.Command {
	return &cobra.Command{
		Use:   "flows",
		Short: "List this program's flows with their parameters as JSON Schema",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			type flowJSON struct {
				Name        string          `json:"name"`
				Description string          `json:"description,omitempty"`
				Parameters  map[string]any  `json:"parameters"`
				Defaults    json.RawMessage `json:"defaults"`
			}
			out := make([]flowJSON, 0, len(prog.Flows))
			for _, f := range prog.Flows {
				fj := flowJSON{Name: f.Name, Description: f.Description, Defaults: f.Defaults}
				if f.ParamsType != nil {
					fj.Parameters = params.Schema(f.ParamsType)
				}
				if fj.Defaults == nil {
					fj.Defaults = json.RawMessage("null")
				}
				out = append(out, fj)
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, string(b))
			return nil
		},
	}
}

func taskCommand(env *cli.Env, prog Program) *cobra.Command {
	var input string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "task TASK --input JSON|@file",
		Short: "Run one task by itself, outside any flow, with its retries and timeout (recorded as flow task:TASK)",
		Args:  exactArgs(1, "one task name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			td, err := prog.task(args[0])
			if err != nil {
				return err
			}
			in, err := cli.ReadArg("--input", input)
			if err != nil {
				return err
			}
			def := taskFlow(td)
			p, err := params.Build(td.InputType, nil, in, nil)
			if err != nil {
				return cli.Usagef("task %s: --input: %v", td.Name, err)
			}
			return withEngine(cmd.Context(), env, func(eng *engine.Engine, blobs *blob.Store) error {
				out, err := eng.Start(cmd.Context(), def, p)
				if err != nil {
					return err
				}
				return report(env, blobs, out, asJSON)
			})
		},
	}
	cmd.Flags().StringVar(&input, "input", "", "the task's input as JSON, or @FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the finished run as JSON")
	return cmd
}
