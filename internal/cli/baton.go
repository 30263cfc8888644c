package cli

import (
	"context"
	"fmt"
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
	root.PersistentFlags().StringVar(&env.DB, "db", env.DB,
		"path of the store `file` (default: $BATON_DB, else $BATON_HOME/baton.db, else ~/.baton/baton.db)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &UsageError{Err: fmt.Errorf("%w; see: %s --help", err, cmd.CommandPath())}
	})
	root.AddCommand(RunsCommand(env), VersionCommand(env))
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetIn(strings.NewReader(""))
	if ctx == nil {
		ctx = context.Background()
	}

	err := root.ExecuteContext(ctx)
	if err != nil {
		if batonCobraUsage(err) {
			err = &UsageError{Err: err}
		}
		fmt.Fprintf(env.Stderr, "baton: %v\n", err)
	}
	return ExitCode(err)
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
