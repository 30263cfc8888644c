// Package batoncmd is the command line of the baton command (cmd/baton):
// the API server and its one-machine setup (servecmd: server, dev), the
// runs commands (runscmd), and workers, queues and retention, through a
// server (--server, BATON_SERVER) or directly on the store (--db). It links
// the server and every store backend, PostgreSQL included.
package batoncmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/deploycmd"
	"github.com/batonhq/baton/internal/cli/runscmd"
	"github.com/batonhq/baton/internal/cli/servecmd"
	_ "github.com/batonhq/baton/postgres" // --db postgres://...
)

// Baton runs the `baton` command line with args (without the program name)
// and returns the process exit code (see cli.Execute). cfg gives `baton
// dev` its example flows.
func Baton(ctx context.Context, args []string, env *cli.Env, cfg servecmd.Config) int {
	if env.Command == "" {
		env.Command = cli.SelfCommand("baton")
	}
	root := &cobra.Command{
		Use:   "baton",
		Short: "Run the Baton server and inspect and manage the runs of Baton workflows",
		Long: "baton serves Baton's API (server, dev) and inspects and manages flow runs.\n\n" +
			"Commands read the server given by --server, else $BATON_SERVER; without one, they read\n" +
			"the store directly: the file (or postgres:// URL) given by --db, else $BATON_DB, else\n" +
			"$BATON_HOME/baton.db, else ~/.baton/baton.db. Creating, cancelling and retrying runs\n" +
			"needs a server: start one on this machine with: baton dev",
		// No Args: cobra's own check reports unknown commands (with
		// suggestions), which Baton maps to a usage error.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&env.Server, "server", env.Server,
		"base `URL` of a Baton server to talk to, such as http://127.0.0.1:8420 (default $BATON_SERVER; none: read the store)")
	cli.AsFlag(env, root.PersistentFlags())
	root.AddCommand(runscmd.Command(env), runscmd.EventsCommand(env), WorkersCommand(env), QueuesCommand(env), RetentionCommand(env), LimitsCommand(env),
		servecmd.ServerCommand(env, cfg), servecmd.DevCommand(env, cfg), cli.VersionCommand(env),
		deploycmd.Command(env))
	return cli.Execute(ctx, root, args, env)
}
