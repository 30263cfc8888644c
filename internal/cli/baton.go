package cli

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Baton runs the `baton` command line with args (without the program name)
// and returns the process exit code: ExitOK, ExitFailed, or ExitUsage for bad
// input, including cobra's own errors (unknown command or flag, wrong number
// of arguments). Errors are printed to env.Stderr as "baton: <error>".
func Baton(ctx context.Context, args []string, env *Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	root := &cobra.Command{
		Use:   "baton",
		Short: "Inspect the runs of Baton workflows",
		Long: "baton inspects the flow runs recorded in a Baton store.\n\n" +
			"The store is the file given by --db, else $BATON_DB, else $BATON_HOME/baton.db,\n" +
			"else ~/.baton/baton.db.",
		// No Args: cobra's own check reports unknown commands (with
		// suggestions), which Baton maps to a usage error.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(RunsCommand(env), VersionCommand(env))
	return execute(ctx, root, args, env)
}

// batonCobraUsage recognizes the errors cobra returns itself, before a
// command runs, for bad command lines.
func batonCobraUsage(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag",
		"accepts ", "requires at least", "requires at most", "accepts between", "invalid argument",
		"required flag", "flag needs an argument", "bad flag syntax", "if any flags in the group"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}
