package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
)

// GET /flows and /flows/{name}: the flows workers registered, with their
// parameter schema, defaults and deployments (the web UI's /flows pages).

// flowRoutes are the API routes of the registered flows.
func (s *Server) flowRoutes() []route {
	p := apitype.Prefix
	return []route{
		{method: "GET", pattern: p + "/flows", summary: "Every flow a worker registered, by name, with when it was last registered, its parameter schema, defaults and deployments", tag: "flows", response: "FlowList", handle: s.listFlows},
		{method: "GET", pattern: p + "/flows/{name}", summary: "A registered flow: its parameter schema, defaults and deployments with their next fire times (404 for a flow no worker registered); start a run of it with POST /runs", tag: "flows", response: "Flow", handle: s.getFlow},
	}
}

// flowView is the API's view of a registered flow with its deployments
// (deps: those of every flow; the flow's are picked out).
func flowView(f store.Flow, deps []apitype.Deployment) apitype.Flow {
	v := apitype.Flow{Name: f.Name, RegisteredAt: f.RegisteredAt, Deployments: []apitype.FlowDeployment{},
		RunsLink: apitype.Prefix + "/runs?" + url.Values{"flow": {f.Name}}.Encode()}
	if len(f.Parameters) > 0 && json.Valid(f.Parameters) {
		v.ParameterSchema = f.Parameters
	}
	if len(f.Defaults) > 0 && json.Valid(f.Defaults) {
		v.Defaults = f.Defaults
	}
	for _, d := range deps {
		if d.Flow != f.Name {
			continue
		}
		fd := apitype.FlowDeployment{Name: d.Name, Paused: d.Paused, Schedules: len(d.Schedules)}
		if !d.Paused {
			for _, sc := range d.Schedules {
				if !sc.Paused && sc.NextFire != nil && (fd.NextFire == nil || sc.NextFire.Before(*fd.NextFire)) {
					fd.NextFire = sc.NextFire
				}
			}
		}
		v.Deployments = append(v.Deployments, fd)
	}
	return v
}

// flowsList reads GET /api/v1/flows.
func (s *Server) flowsList(ctx context.Context) ([]apitype.Flow, error) {
	fs, err := s.st.FlowList(ctx)
	if err != nil {
		return nil, err
	}
	deps, err := s.deploymentsList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitype.Flow, len(fs))
	for i, f := range fs {
		out[i] = flowView(f, deps)
	}
	return out, nil
}

// flowGet reads GET /api/v1/flows/{name}.
func (s *Server) flowGet(ctx context.Context, name string) (apitype.Flow, error) {
	if err := store.CheckIdentifier("flow name", name); err != nil {
		return apitype.Flow{}, errBadRequest("%v", err)
	}
	f, err := s.st.FlowGet(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return apitype.Flow{}, errNotFound("no worker registered flow %q; the registered flows are listed at GET %s/flows", name, apitype.Prefix)
	}
	if err != nil {
		return apitype.Flow{}, err
	}
	ds, err := s.st.DeploymentList(ctx)
	if err != nil {
		return apitype.Flow{}, err
	}
	deps := make([]apitype.Deployment, 0, len(ds))
	for _, d := range ds {
		if d.Flow == name {
			deps = append(deps, deploy.View(d, nil))
		}
	}
	return flowView(f, deps), nil
}

func (s *Server) listFlows(w http.ResponseWriter, r *http.Request) error {
	fs, err := s.flowsList(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, apitype.FlowList{Flows: fs})
}

func (s *Server) getFlow(w http.ResponseWriter, r *http.Request) error {
	f, err := s.flowGet(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, f)
}
