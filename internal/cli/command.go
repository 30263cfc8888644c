package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/internal/storeopen"
)

// Execute runs a root command with the flags and error handling every
// Baton command line shares (--db, whose help names the backends linked,
// flag errors that say what a flag
// expects, hints naming the command as run) and returns the exit code:
// ExitOK, ExitFailed, or ExitUsage for bad input, including cobra's own
// errors (unknown command or flag, wrong number of arguments). Errors are
// printed to env.Stderr as "<root name>: <error>".
func Execute(ctx context.Context, root *cobra.Command, args []string, env *Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	where := "a SQLite `file`"
	if slices.Contains(storeopen.Schemes(), "postgres") {
		where += " or a postgres:// URL"
	}
	root.PersistentFlags().StringVar(&env.DB, "db", env.DB,
		"the store: "+where+" (default: $BATON_DB, else $BATON_HOME/baton.db, else ~/.baton/baton.db)")
	root.SetFlagErrorFunc(flagError)
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetIn(strings.NewReader(""))
	if ctx == nil {
		ctx = context.Background()
	}
	err := root.ExecuteContext(ctx)
	var he *Hint
	if errors.As(err, &he) {
		he.command = env.Cmd()
		if he.Tool && root.Name() != "baton" {
			he.command = "baton"
		}
	}
	if err != nil {
		if cobraUsage(err) {
			err = &UsageError{Err: err}
		}
		fmt.Fprintf(env.Stderr, "%s: %v\n", root.Name(), err)
	}
	return ExitCode(err)
}

// cobraUsage recognizes the errors cobra returns itself, before a command
// runs, for bad command lines.
func cobraUsage(err error) bool {
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

// HintCommand marks where a Hint names the command to run; without it, the
// command goes last among the arguments.
var HintCommand = &struct{ hint string }{}

// Hint is an error whose message suggests a command of this program:
// Execute fills in how to invoke it (Env.Command: the user's program,
// baton, or go run ./cmd/baton) before printing it. Format and Args are
// fmt.Sprintf's, with HintCommand among Args (else at their end) standing
// for the command.
type Hint struct {
	Format string
	Args   []any
	// Tool: the hint is a command of the baton tool (baton dev), which a
	// user's program names "baton"; baton itself names it as run.
	Tool bool
	// Err, when set, is what the hint explains (for errors.Is and As).
	Err error

	command string
}

// Unwrap returns the error the hint explains.
func (e *Hint) Unwrap() error { return e.Err }

func (e *Hint) Error() string {
	cmd := e.command
	if cmd == "" {
		cmd = "baton"
	}
	args := make([]any, 0, len(e.Args)+1)
	placed := false
	for _, a := range e.Args {
		if a == any(HintCommand) {
			a, placed = cmd, true
		}
		args = append(args, a)
	}
	if !placed {
		args = append(args, cmd)
	}
	return fmt.Sprintf(e.Format, args...)
}

// ExactArgs is cobra.ExactArgs returning a UsageError that names the
// command and its usage.
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			return Usagef("wrong number of arguments for %q: want %s, got %d; usage: %s", name, what, len(args), cmd.UseLine())
		}
		return nil
	}
}

// Group returns a command that only holds subcommands: without one it
// prints its help, and an unknown one is a usage error.
func Group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return Usagef("unknown command %q for %q; see: %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

// ReadArg returns the value of a flag that takes JSON or @FILE: the file's
// content for @FILE (a file that cannot be read is a UsageError naming the
// flag), else v itself.
func ReadArg(flag, v string) (string, error) {
	name, ok := strings.CutPrefix(v, "@")
	if !ok {
		return v, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", Usagef("%s: %v", flag, err)
	}
	return string(b), nil
}
