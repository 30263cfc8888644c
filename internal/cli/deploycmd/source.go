// Package deploycmd implements `deployments`, in both of Baton's command
// lines (the baton command and a user's program): create, list, show,
// update, pause, resume, run, delete, next and backfill, on the store given
// by --db or through the server given by --server (BATON_SERVER). Both
// paths validate with package deploy, so a refused input gets the same
// message either way, and exit code 2.
package deploycmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
)

// source is where the commands act: the store, or a server.
type source interface {
	Put(ctx context.Context, mode string, req apitype.DeploymentRequest) (apitype.Deployment, bool, error)
	Get(ctx context.Context, name string) (apitype.Deployment, error)
	List(ctx context.Context) ([]apitype.Deployment, error)
	Delete(ctx context.Context, name string) error
	Pause(ctx context.Context, name string, paused bool, req apitype.DeploymentPauseRequest) (apitype.Deployment, error)
	Run(ctx context.Context, name string, params json.RawMessage) (apitype.Run, error)
	Next(ctx context.Context, name string, count int) (apitype.DeploymentNext, error)
	Backfill(ctx context.Context, name string, req apitype.BackfillRequest) (apitype.BackfillResult, error)
	Close() error
}

// open returns the server's source when one is configured, else the
// store's (created when it does not exist: deployments are written).
func open(ctx context.Context, env *cli.Env) (source, error) {
	if env.ServerURL() != "" {
		c, err := cli.Client(env)
		if err != nil {
			return nil, err
		}
		return &remote{c: c}, nil
	}
	st, _, err := env.OpenStore(ctx)
	if err != nil {
		return nil, err
	}
	return &local{env: env, st: st, svc: deploy.New(deploy.Config{Store: st, Clock: env.Clk()})}, nil
}

// usage maps the errors of package deploy to usage errors (exit 2).
func usage(err error) error {
	var de *deploy.Error
	if errors.As(err, &de) {
		return &cli.UsageError{Err: errors.New(de.Msg)}
	}
	return err
}

// local acts on the store.
type local struct {
	env *cli.Env
	st  store.Store
	svc *deploy.Service
}

func (l *local) Close() error { return l.st.Close() }

func (l *local) Put(ctx context.Context, mode string, req apitype.DeploymentRequest) (apitype.Deployment, bool, error) {
	source := store.SourceAPI
	if mode == store.PutRegister {
		source = store.SourceCode
	}
	d, changed, err := l.svc.Put(ctx, mode, req, source, l.env.Actor())
	return deploy.View(d, nil), changed, usage(err)
}

func (l *local) Get(ctx context.Context, name string) (apitype.Deployment, error) {
	d, err := l.svc.Get(ctx, name)
	if err != nil {
		return apitype.Deployment{}, usage(err)
	}
	hist, err := l.st.DeploymentHistoryList(ctx, name, 0, 0)
	if err != nil {
		return apitype.Deployment{}, fmt.Errorf("history of deployment %s: %w", name, err)
	}
	return deploy.View(d, hist), nil
}

func (l *local) List(ctx context.Context) ([]apitype.Deployment, error) {
	ds, err := l.st.DeploymentList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	out := make([]apitype.Deployment, len(ds))
	for i, d := range ds {
		out[i] = deploy.View(d, nil)
	}
	return out, nil
}

func (l *local) Delete(ctx context.Context, name string) error {
	return usage(l.svc.Delete(ctx, name, l.env.Actor()))
}

func (l *local) Pause(ctx context.Context, name string, paused bool, req apitype.DeploymentPauseRequest) (apitype.Deployment, error) {
	d, err := l.svc.Pause(ctx, name, req.Schedule, paused, req.Note, l.env.Actor())
	return deploy.View(d, nil), usage(err)
}

func (l *local) runView(r store.Run) apitype.Run {
	v := api.RunJSON(r, nil)
	api.MarkLate(&v, l.env.Clk().Now(), api.LateGrace)
	return v
}

func (l *local) Run(ctx context.Context, name string, params json.RawMessage) (apitype.Run, error) {
	r, err := l.svc.Run(ctx, name, params, l.env.Actor())
	if err != nil {
		return apitype.Run{}, usage(err)
	}
	return l.runView(r), nil
}

func (l *local) Next(ctx context.Context, name string, count int) (apitype.DeploymentNext, error) {
	fires, err := l.svc.Next(ctx, name, count)
	if err != nil {
		return apitype.DeploymentNext{}, usage(err)
	}
	return deploy.NextView(name, fires), nil
}

func (l *local) Backfill(ctx context.Context, name string, req apitype.BackfillRequest) (apitype.BackfillResult, error) {
	created, existed, err := l.svc.Backfill(ctx, name, req.From, req.To, l.env.Actor())
	if err != nil {
		return apitype.BackfillResult{}, usage(err)
	}
	out := apitype.BackfillResult{Created: make([]apitype.Run, len(created)), Existed: existed}
	for i, r := range created {
		out.Created[i] = l.runView(r)
	}
	return out, nil
}

// remote acts through a server.
type remote struct{ c *client.Client }

func (r *remote) Close() error { return nil }

func (r *remote) Put(ctx context.Context, mode string, req apitype.DeploymentRequest) (apitype.Deployment, bool, error) {
	var (
		d       apitype.Deployment
		changed = true
		err     error
	)
	switch mode {
	case store.PutCreate:
		d, err = r.c.CreateDeployment(ctx, req)
	case store.PutUpdate:
		d, err = r.c.UpdateDeployment(ctx, req.Name, req)
	default:
		d, changed, err = r.c.RegisterDeployment(ctx, req.Name, req)
	}
	if err != nil {
		return d, false, cli.APIError(err, "")
	}
	return d, changed, nil
}

func (r *remote) Get(ctx context.Context, name string) (apitype.Deployment, error) {
	d, err := r.c.GetDeployment(ctx, name)
	if err != nil {
		return d, cli.APIError(err, "")
	}
	return d, nil
}

func (r *remote) List(ctx context.Context) ([]apitype.Deployment, error) {
	ds, err := r.c.ListDeployments(ctx)
	if err != nil {
		return nil, cli.APIError(err, "")
	}
	if ds == nil {
		ds = []apitype.Deployment{}
	}
	return ds, nil
}

func (r *remote) Delete(ctx context.Context, name string) error {
	if err := r.c.DeleteDeployment(ctx, name); err != nil {
		return cli.APIError(err, "")
	}
	return nil
}

func (r *remote) Pause(ctx context.Context, name string, paused bool, req apitype.DeploymentPauseRequest) (apitype.Deployment, error) {
	d, err := r.c.PauseDeployment(ctx, name, paused, req)
	if err != nil {
		return d, cli.APIError(err, "")
	}
	return d, nil
}

func (r *remote) Run(ctx context.Context, name string, params json.RawMessage) (apitype.Run, error) {
	run, err := r.c.RunDeployment(ctx, name, apitype.DeploymentRunRequest{Parameters: params})
	if err != nil {
		return run, cli.APIError(err, "")
	}
	return run, nil
}

func (r *remote) Next(ctx context.Context, name string, count int) (apitype.DeploymentNext, error) {
	n, err := r.c.NextDeployment(ctx, name, count)
	if err != nil {
		return n, cli.APIError(err, "")
	}
	return n, nil
}

func (r *remote) Backfill(ctx context.Context, name string, req apitype.BackfillRequest) (apitype.BackfillResult, error) {
	res, err := r.c.BackfillDeployment(ctx, name, req)
	if err != nil {
		return res, cli.APIError(err, "")
	}
	if res.Created == nil {
		res.Created = []apitype.Run{}
	}
	return res, nil
}
