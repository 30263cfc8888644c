package ui

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/batonhq/baton/apitype"
)

// The flows pages: /flows lists every registered flow; /flows/{name}
// shows one with its parameters (a table made from its JSON Schema), its
// defaults, its deployments and latest runs, and a run-now form generated
// from the schema (as a deployment page's) that calls POST /api/v1/runs.

// flowRuns is how many of its latest runs a flow page lists.
const flowRuns = 10

// flowsData is the /flows page.
type flowsData struct {
	Flows []apitype.Flow
}

func (h *Handler) flows(r *http.Request) (string, view, error) {
	fs, err := h.src.Flows(r.Context())
	if err != nil {
		return "", view{}, err
	}
	return "flows", view{Title: "Flows", Nav: "flows", Page: "flows", Data: flowsData{Flows: fs}}, nil
}

// flowData is the /flows/{name} page.
type flowData struct {
	apitype.Flow
	// Params are the parameters of the schema, one row each (the form's
	// fields, with the flow's defaults as their values); none when the
	// schema is not an object of properties (Form.Whole).
	Params   []field
	Form     paramsForm
	Runs     []apitype.Run
	RunsLink string
}

func (h *Handler) flow(r *http.Request) (string, view, error) {
	ctx := r.Context()
	name := r.PathValue("name")
	f, err := h.src.Flow(ctx, name)
	if err != nil {
		return "", view{}, err
	}
	d := flowData{Flow: f}
	q := url.Values{"flow": {name}}
	d.RunsLink = "/runs?" + q.Encode()
	q.Set("limit", strconv.Itoa(flowRuns))
	if d.Runs, err = h.src.Runs(ctx, q); err != nil {
		return "", view{}, err
	}
	d.Form = newParamsForm("run-flow-"+safeID(name), f.ParameterSchema, f.Defaults)
	if !d.Form.Whole {
		d.Params = d.Form.Fields
	}
	return "flow", view{Title: "Flow " + name, Nav: "flows", Page: "flow", Data: d}, nil
}

func init() {
	funcs["flowPath"] = func(name string) string { return "/flows/" + url.PathEscape(name) }
	funcs["flowRunsPath"] = func(name string) string { return "/runs?" + url.Values{"flow": {name}}.Encode() }
}
