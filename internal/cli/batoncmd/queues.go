package batoncmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
)

// addQueueCommands adds `queues show|create|update|pause|resume` to cmd:
// on the store or through a server, with the validation of api.SetQueue.
func addQueueCommands(cmd *cobra.Command, env *cli.Env) {
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a queue: depths, priority and pause",
		Args:  cli.ExactArgs(1, "a queue NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			qs, err := listQueues(cmd.Context(), env)
			if err != nil {
				return err
			}
			for _, q := range qs {
				if q.Queue == args[0] {
					return cli.WriteJSON(env.Stdout, q)
				}
			}
			return &cli.UsageError{Err: fmt.Errorf("unknown queue %q: not declared, served by no live worker, and named by no unfinished work", args[0])}
		},
	}
	set := func(use, short, action string, create bool) *cobra.Command {
		var (
			prio, limit   int
			desc, note    string
			asJSON        bool
			prioSet, dSet bool
		)
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cli.ExactArgs(1, "a queue NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				req := apitype.QueueRequest{Name: args[0], Note: note}
				prioSet, dSet = cmd.Flags().Changed("priority"), cmd.Flags().Changed("description")
				if prioSet {
					req.Priority = &prio
				}
				if dSet {
					req.Description = &desc
				}
				if cmd.Flags().Changed("limit") {
					req.Limit = &limit
				}
				q, err := setQueue(cmd.Context(), env, req, create, action)
				if err != nil {
					return err
				}
				if asJSON {
					return cli.WriteJSON(env.Stdout, q)
				}
				state := "active"
				if q.Paused {
					state = "paused"
				}
				lim := "no limit"
				if q.Limit > 0 {
					lim = fmt.Sprintf("limit %d", q.Limit)
				}
				_, err = fmt.Fprintf(env.Stdout, "queue %s: priority %d, %s, %s\n", q.Queue, q.Priority, lim, state)
				return err
			},
		}
		if action == "" {
			c.Flags().IntVar(&prio, "priority", 0, "priority: workers serving several queues take higher ones first")
			c.Flags().StringVar(&desc, "description", "", "what the queue is for")
			c.Flags().IntVar(&limit, "limit", 0, "concurrency limit: at most N flow runs of the queue held by workers and,\n"+
				"counted apart, at most N of its task runs RUNNING, on every worker (0: none)")
		}
		if action == "pause" {
			c.Flags().StringVar(&note, "note", "", "why it is paused (shown with the queue and in waiting reasons)")
		}
		c.Flags().BoolVar(&asJSON, "json", false, "print the queue as a JSON object")
		return c
	}
	cmd.AddCommand(show,
		set("create NAME [--priority P] [--limit N] [--description D]", "Declare a work queue", "", true),
		set("update NAME [--priority P] [--limit N] [--description D]", "Change a queue's priority, limit or description", "", false),
		set("pause NAME [--note N]", "Pause a queue: claims hand out nothing of it until it is resumed", "pause", false),
		set("resume NAME", "Resume a paused queue", "resume", false))
}

func setQueue(ctx context.Context, env *cli.Env, req apitype.QueueRequest, create bool, action string) (apitype.Queue, error) {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return apitype.Queue{}, err
		}
		q, err := c.SetQueue(ctx, req, create, action)
		if err != nil {
			return q, cli.APIError(err, "")
		}
		return q, nil
	}
	// Validated before the store is opened (or created).
	if _, err := api.QueueParams(req, create, action, store.Actor{}); err != nil {
		return apitype.Queue{}, &cli.UsageError{Err: err}
	}
	st, _, err := env.OpenStore(ctx)
	if err != nil {
		return apitype.Queue{}, err
	}
	defer st.Close()
	q, err := api.SetQueue(ctx, st, req, create, action, env.Actor())
	if err != nil {
		if isBadInput(err) || errors.Is(err, store.ErrConflict) {
			return apitype.Queue{}, &cli.UsageError{Err: err}
		}
		return apitype.Queue{}, err
	}
	return api.QueueInfoJSON(q), nil
}

func isBadInput(err error) bool {
	var bad *api.BadInputError
	return errors.As(err, &bad)
}
