package runscmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
)

// runsHistoryPage is how many entries `runs history` reads per request.
const runsHistoryPage = 1000

// runsHistoryDetailMax bounds the DETAILS column of the text view.
const runsHistoryDetailMax = 120

func runsHistoryCommand(env *cli.Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history RUN_ID",
		Short: "Print the history of a run: every action on it, by whom, when and why",
		Long: "Print a run's append-only history, oldest first: its creation, cancels, retries and\n" +
			"parameter edits, and what the system did (attempts started and ended, leases lost,\n" +
			"runs given back and rescheduled). ACTOR is \"system\" for Baton itself, the OS user\n" +
			"(USER@HOST) for commands on the store, or the name a client gave a server (--as),\n" +
			"shown \"(unverified)\". --json prints a JSON array of entries with the fields time,\n" +
			"actor, verified, action, reason, payload and seq.",
		Args: cli.ExactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := openRunsSource(ctx, env)
			if err != nil {
				return err
			}
			defer src.Close()
			entries := []apitype.HistoryEntry{}
			var after int64
			for {
				page, err := src.History(ctx, args[0], after, runsHistoryPage)
				if err != nil {
					return err
				}
				entries = append(entries, page.History...)
				if page.NextAfter == 0 || len(page.History) == 0 {
					break
				}
				after = page.NextAfter
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, entries)
			}
			return runsHistoryText(env.Stdout, entries)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of history entries")
	return cmd
}

// runsHistoryText prints the table of `runs history`.
func runsHistoryText(w io.Writer, entries []apitype.HistoryEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tREASON\tDETAILS")
	for _, e := range entries {
		actor := e.Actor
		if !e.Verified {
			actor += " (unverified)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cli.TimeMillis(e.Time), cli.OneLine(actor), e.Action,
			cli.Truncate(cli.OneLine(e.Reason), runsNoteMax), runsHistoryDetails(e.Payload))
	}
	return tw.Flush()
}

// runsHistoryDetails shows a payload compactly, shortened.
func runsHistoryDetails(p json.RawMessage) string {
	if len(p) == 0 || string(p) == "null" {
		return ""
	}
	var c bytes.Buffer
	if json.Compact(&c, p) != nil {
		return cli.Truncate(cli.OneLine(string(p)), runsHistoryDetailMax)
	}
	return cli.Truncate(c.String(), runsHistoryDetailMax)
}
