package progcmd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/worker"
)

// workerCommand returns a user binary's `worker`: it registers the program's
// flows and tasks with a server and executes the runs of its queues until
// the context ends (SIGINT, SIGTERM).
func workerCommand(env *cli.Env, prog Program) *cobra.Command {
	var (
		queues, slots    []string
		concurrency      int
		name             string
		cpu, memory, gpu string
	)
	cmd := &cobra.Command{
		Use:   "worker [--server URL] [--queue Q]... [--concurrency N] [--slots queue=N]... [--name NAME] [--cpu N] [--memory SIZE] [--gpu N]",
		Short: "Execute this program's flows for a Baton server: the runs created on its queues",
		Long: "Register this program's flows and tasks with the Baton server at --server (default\n" +
			"$BATON_SERVER) and execute the runs created on the given queues (default: default)\n" +
			"until SIGINT or SIGTERM; then finish or hand back the work in progress.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if env.ServerURL() == "" {
				return cli.Usagef("worker needs a Baton server: pass --server URL or set BATON_SERVER " +
					"(start one with: baton server, or baton dev)")
			}
			c, err := remote.New(env.ServerURL())
			if err != nil {
				return &cli.UsageError{Err: fmt.Errorf("--server: %w", err)}
			}
			if concurrency < 1 {
				return cli.Usagef("invalid --concurrency %d: must be at least 1", concurrency)
			}
			for _, q := range queues {
				if strings.TrimSpace(q) == "" {
					return cli.Usagef("invalid --queue %q: a queue name is required", q)
				}
			}
			slotMap := map[string]int{}
			for _, s := range slots {
				q, n, ok := strings.Cut(s, "=")
				v, err := strconv.Atoi(strings.TrimSpace(n))
				if !ok || strings.TrimSpace(q) == "" || err != nil || v < 0 {
					return cli.Usagef("invalid --slots %q: want QUEUE=N, such as gpu=2", s)
				}
				slotMap[strings.TrimSpace(q)] = v
			}
			res, err := workerResources(cpu, memory, gpu, detectResources)
			if err != nil {
				return err
			}
			if len(prog.Flows) == 0 && len(prog.Tasks) == 0 {
				return cli.Usagef("this program defines no flows or tasks to execute")
			}
			env.Logger().Info("worker resources", "has", describeResources(res))
			// The program's deployments, registered with the server before
			// the worker serves (registering the same ones again changes
			// nothing).
			if len(prog.Deployments) > 0 {
				if _, err := registerDeployments(cmd.Context(), env, prog); err != nil {
					return err
				}
			}
			w, err := worker.New(worker.Config{Client: c, Name: name, Queues: queues, Concurrency: concurrency,
				Slots: slotMap, Flows: prog.Flows, Tasks: prog.Tasks, Logger: env.Logger(), LogOutput: env.Stderr,
				OnTaskFailure: cli.PrintTaskFailure(env), Resources: res})
			if err != nil {
				return err
			}
			if err := w.Run(cmd.Context()); err != nil {
				return cli.APIError(err, "")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&env.Server, "server", env.Server, "base `URL` of the Baton server (default $BATON_SERVER)")
	f.StringArrayVar(&queues, "queue", nil, "serve this queue (repeatable; default \"default\")")
	f.IntVar(&concurrency, "concurrency", 8, "flow runs executed at once")
	f.StringArrayVar(&slots, "slots", nil, "distributed task runs executed at once on a queue, as QUEUE=N (repeatable; default --concurrency)")
	f.StringVar(&name, "name", "", "name of the worker in listings (default HOST-PID)")
	f.StringVar(&cpu, "cpu", "", "CPUs for task runs that need them, such as 16, 0.5 or 500m (default: the CPUs of the machine or its cgroup quota)")
	f.StringVar(&memory, "memory", "", "memory for task runs that need it, such as 64GiB or 512MB (default: MemTotal or the cgroup's memory.max)")
	f.StringVar(&gpu, "gpu", "", "GPUs for task runs that need them (default: the /dev/nvidia[0-9]* devices, usually 0)")
	return cmd
}
