package batoncmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
)

// LimitsCommand returns `limits set|list|delete`: tag concurrency limits,
// on the store or through a server (the same validation and messages as
// the API: internal/api/limit.go).
func LimitsCommand(env *cli.Env) *cobra.Command {
	cmd := cli.Group("limits", "Tag concurrency limits: at most N task runs with a tag running at once")
	cmd.Long = "A limit bounds the task runs carrying a tag (baton.Tags on the task) that are RUNNING at\n" +
		"any instant, on every worker and server sharing the store. The others wait in state\n" +
		"AWAITING_SLOT and start oldest first as slots free. A slot is held by its task run's\n" +
		"lease: a dead worker's slots come back when its lease expires."
	var asJSON bool
	set := &cobra.Command{
		Use:   "set TAG N",
		Short: "Set the limit of a tag to N slots (0 or more; 0 lets none start)",
		Args:  cli.ExactArgs(2, "a TAG and a limit N"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tag := args[0]
			if err := store.CheckTag("tag", tag); err != nil {
				return &cli.UsageError{Err: err}
			}
			n, err := api.ParseLimit(args[1])
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			l, err := setLimit(cmd.Context(), env, tag, n)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, l)
			}
			_, err = fmt.Fprintf(env.Stdout, "limit %s: %d slots (%d held, %d waiting)\n", l.Tag, l.Limit, l.Running, l.Waiting)
			return err
		},
	}
	set.Flags().BoolVar(&asJSON, "json", false, "print the limit as a JSON object")
	// The flag parser takes a negative N for flags: say what the API says.
	set.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if m := negativeArg.FindStringSubmatch(err.Error()); m != nil {
			_, perr := api.ParseLimit(m[1])
			return &cli.UsageError{Err: perr}
		}
		return c.Root().FlagErrorFunc()(c, err)
	})
	list := &cobra.Command{
		Use:   "list",
		Short: "List the limits, with who holds each slot",
		Args:  cli.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ls, err := listLimits(cmd.Context(), env)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, ls)
			}
			return limitsText(env.Stdout, ls, env.Clk().Now())
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of limit objects")
	del := &cobra.Command{
		Use:   "delete TAG",
		Short: "Remove the limit of a tag: its task runs start without waiting for a slot",
		Args:  cli.ExactArgs(1, "a TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tag := args[0]
			if err := store.CheckTag("tag", tag); err != nil {
				return &cli.UsageError{Err: err}
			}
			if err := deleteLimit(cmd.Context(), env, tag); err != nil {
				return err
			}
			_, err := fmt.Fprintf(env.Stdout, "limit %s deleted\n", tag)
			return err
		},
	}
	cmd.AddCommand(set, list, del)
	return cmd
}

// negativeArg matches the flag parser's error for a negative number given
// as an argument ("unknown shorthand flag: '1' in -1").
var negativeArg = regexp.MustCompile(`^unknown shorthand flag: '\d' in (-\d+)$`)

func setLimit(ctx context.Context, env *cli.Env, tag string, n int) (apitype.Limit, error) {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return apitype.Limit{}, err
		}
		l, err := c.SetLimit(ctx, tag, n)
		if err != nil {
			return l, cli.APIError(err, "")
		}
		return l, nil
	}
	st, _, err := env.OpenStore(ctx)
	if err != nil {
		return apitype.Limit{}, err
	}
	defer st.Close()
	l, err := api.SetLimit(ctx, st, tag, apitype.SetLimitRequest{Limit: &n}, env.Actor())
	if err != nil {
		var bad *api.BadInputError
		if errors.As(err, &bad) {
			return apitype.Limit{}, &cli.UsageError{Err: err}
		}
		return apitype.Limit{}, err
	}
	return api.LimitJSON(l), nil
}

func listLimits(ctx context.Context, env *cli.Env) ([]apitype.Limit, error) {
	out := []apitype.Limit{}
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return nil, err
		}
		ls, err := c.Limits(ctx)
		if err != nil {
			return nil, cli.APIError(err, "")
		}
		return append(out, ls...), nil
	}
	st, _, err := env.OpenStoreForReading(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ls, err := st.LimitList(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list limits: %w", err)
	}
	for _, l := range ls {
		out = append(out, api.LimitJSON(l))
	}
	return out, nil
}

func deleteLimit(ctx context.Context, env *cli.Env, tag string) error {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return err
		}
		if err := c.DeleteLimit(ctx, tag); err != nil {
			return cli.APIError(err, "")
		}
		return nil
	}
	st, _, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.LimitDelete(ctx, tag); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &cli.UsageError{Err: fmt.Errorf("tag %q has no limit", tag)}
		}
		return err
	}
	return nil
}

// limitsText prints each limit, then who holds its slots.
func limitsText(w io.Writer, ls []apitype.Limit, now time.Time) error {
	if len(ls) == 0 {
		_, err := fmt.Fprintln(w, "No limits. Set one with: baton limits set TAG N")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tLIMIT\tRUNNING\tWAITING\tSET BY")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", cli.OneLine(l.Tag), l.Limit, l.Running, l.Waiting, cli.OneLine(l.UpdatedBy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range ls {
		if len(l.Holders) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nSlots of %s:\n", cli.OneLine(l.Tag))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TASK RUN\tTASK\tRUN\tWORKER\tSINCE")
		for _, h := range l.Holders {
			worker := h.WorkerID
			if worker == "" {
				worker = "(local)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", h.TaskRunID, cli.OneLine(h.Task), h.RunID, worker,
				cli.Time(h.Since)+" ("+adminAgo(h.Since, now)+")")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
