package progcmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
)

// Deployments returns the deployments the program declared with
// baton.Deploy. Package baton sets it in its init function.
var Deployments func() []apitype.DeploymentRequest

// deployCommand returns a user binary's `deploy`: it registers the
// program's deployments on the server (--server, BATON_SERVER) or the
// store (--db). The worker does the same when it starts.
func deployCommand(env *cli.Env, prog Program) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "deploy [--server URL]",
		Short: "Register this program's deployments (baton.Deploy) on a server or the store",
		Long: "Register the deployments this program declares with baton.Deploy, through the server at\n" +
			"--server (default $BATON_SERVER) or else on the store (--db). A declaration registered before\n" +
			"changes nothing; a changed one updates its deployment (pauses and notes stay).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(prog.Deployments) == 0 {
				return cli.Usagef("this program declares no deployments (see baton.Deploy)")
			}
			out, err := registerDeployments(cmd.Context(), env, prog)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(env.Stdout, map[string]any{"deployments": out})
			}
			for _, r := range out {
				verb := "unchanged"
				if r.Changed {
					verb = "registered"
				}
				fmt.Fprintf(env.Stdout, "%s deployment %s (flow %s, %d schedules)\n", verb, r.Deployment.Name, r.Deployment.Flow, len(r.Deployment.Schedules))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&env.Server, "server", env.Server, "base `URL` of the Baton server (default $BATON_SERVER; none: the store)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the deployments as JSON")
	return cmd
}

// registered is the outcome of registering one deployment.
type registered struct {
	Deployment apitype.Deployment `json:"deployment"`
	Changed    bool               `json:"changed"`
}

// registerDeployments registers the program's deployments through the
// server when one is configured, else on the store.
func registerDeployments(ctx context.Context, env *cli.Env, prog Program) ([]registered, error) {
	var out []registered
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return nil, err
		}
		for _, req := range prog.Deployments {
			d, changed, err := c.RegisterDeployment(ctx, req.Name, req)
			if err != nil {
				return out, cli.APIError(err, "")
			}
			out = append(out, registered{d, changed})
		}
		return out, nil
	}
	st, _, err := env.OpenStore(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	svc := deploy.New(deploy.Config{Store: st, Clock: env.Clk()})
	for _, req := range prog.Deployments {
		d, changed, err := svc.Put(ctx, store.PutRegister, req, store.SourceCode, env.Actor())
		if err != nil {
			var de *deploy.Error
			if errors.As(err, &de) {
				return out, &cli.UsageError{Err: fmt.Errorf("deployment %s: %s", req.Name, de.Msg)}
			}
			return out, err
		}
		out = append(out, registered{deploy.View(d, nil), changed})
	}
	return out, nil
}
