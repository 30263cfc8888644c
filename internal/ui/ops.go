package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/batonhq/baton/apitype"
)

// The operations pages: deployments (with a run-now form generated from the
// flow's parameter schema, pause and resume, backfill), workers, limits and
// queues; and the dashboard's chart data.

// nextFires is how many coming fire times a deployment page lists.
const nextFires = 10

// deploymentRuns is how many of its latest runs a deployment page lists.
const deploymentRuns = 10

// deploymentsData is the /deployments page.
type deploymentsData struct {
	Deployments []deploymentRow
}

type deploymentRow struct {
	apitype.Deployment
	Next *time.Time // the earliest next fire of its active schedules
}

func (h *Handler) deployments(r *http.Request) (string, view, error) {
	ds, err := h.src.Deployments(r.Context())
	if err != nil {
		return "", view{}, err
	}
	d := deploymentsData{}
	for _, dep := range ds {
		row := deploymentRow{Deployment: dep}
		if !dep.Paused {
			for _, s := range dep.Schedules {
				if !s.Paused && s.NextFire != nil && (row.Next == nil || s.NextFire.Before(*row.Next)) {
					row.Next = s.NextFire
				}
			}
		}
		d.Deployments = append(d.Deployments, row)
	}
	return "deployments", view{Title: "Deployments", Nav: "deployments", Page: "deployments", Data: d}, nil
}

// deploymentData is the /deployments/{name} page.
type deploymentData struct {
	apitype.Deployment
	Fires    []apitype.FireTime
	Runs     []apitype.Run
	RunsLink string
	Form     paramsForm
	Now      time.Time
}

// paramsForm is a form of run parameters generated from a flow's JSON
// Schema, its fields filled with given values (a deployment's parameters).
type paramsForm struct {
	ID     string
	Schema string // the schema, for the browser's check ("" for none)
	Fields []field
	// Whole is set when the parameters are typed as one JSON document.
	Whole bool
}

// newParamsForm builds the parameters form of schema with values.
func newParamsForm(id string, schema, values json.RawMessage) paramsForm {
	f := paramsForm{ID: id}
	var vals map[string]any
	_ = json.Unmarshal(values, &vals)
	var s map[string]any
	if len(schema) > 0 && json.Unmarshal(schema, &s) == nil && s != nil {
		f.Schema = string(schema)
		s = resolve(s, s)
		props, _ := s["properties"].(map[string]any)
		if typeOf(s) == "object" && len(props) > 0 {
			var required []string
			if rs, ok := s["required"].([]any); ok {
				for _, r := range rs {
					if r, ok := r.(string); ok {
						required = append(required, r)
					}
				}
			}
			names := make([]string, 0, len(props))
			for name := range props {
				names = append(names, name)
			}
			slices.Sort(names)
			for i, name := range names {
				p, _ := props[name].(map[string]any)
				fl := fieldOf(name, fmt.Sprintf("%s-f%d", id, i), resolve(s, p), slices.Contains(required, name))
				if v, ok := vals[name]; ok {
					setValue(&fl, v)
				}
				f.Fields = append(f.Fields, fl)
			}
			return f
		}
	}
	// No schema of an object's properties: one JSON document.
	f.Whole = true
	fl := field{Name: "", ID: id + "-value", Label: "Parameters (JSON)", Type: "json"}
	if len(vals) > 0 {
		fl.Default = pretty(values)
	}
	f.Fields = []field{fl}
	return f
}

// setValue fills a field with a value.
func setValue(f *field, v any) {
	switch v := v.(type) {
	case bool:
		f.Checked = v
	case string:
		if f.Type == "json" {
			b, _ := json.Marshal(v)
			f.Default = string(b)
		} else {
			f.Default = v
		}
	case float64:
		f.Default = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		b, _ := json.Marshal(v)
		f.Default = string(b)
	}
}

func (h *Handler) deployment(r *http.Request) (string, view, error) {
	ctx := r.Context()
	name := r.PathValue("name")
	dep, err := h.src.Deployment(ctx, name)
	if err != nil {
		return "", view{}, err
	}
	d := deploymentData{Deployment: dep, Now: h.now()}
	next, err := h.src.DeploymentNext(ctx, name, nextFires)
	if err != nil {
		return "", view{}, err
	}
	d.Fires = next.Fires
	q := url.Values{"deployment": {name}}
	d.RunsLink = "/runs?" + q.Encode()
	q.Set("limit", strconv.Itoa(deploymentRuns))
	if d.Runs, err = h.src.Runs(ctx, q); err != nil {
		return "", view{}, err
	}
	d.Form = newParamsForm("run-"+safeID(name), dep.ParameterSchema, dep.Parameters)
	return "deployment", view{Title: "Deployment " + name, Nav: "deployments", Page: "deployment", Data: d}, nil
}

// workersData is the /workers page.
type workersData struct {
	Workers []apitype.Worker
	Now     time.Time
}

func (h *Handler) workers(r *http.Request) (string, view, error) {
	ws, err := h.src.Workers(r.Context())
	if err != nil {
		return "", view{}, err
	}
	return "workers", view{Title: "Workers", Nav: "workers", Page: "workers", Data: workersData{Workers: ws, Now: h.now()}}, nil
}

func (h *Handler) limits(r *http.Request) (string, view, error) {
	ls, err := h.src.Limits(r.Context())
	if err != nil {
		return "", view{}, err
	}
	return "limits", view{Title: "Concurrency limits", Nav: "limits", Page: "limits", Data: ls}, nil
}

func (h *Handler) queues(r *http.Request) (string, view, error) {
	qs, err := h.src.Queues(r.Context())
	if err != nil {
		return "", view{}, err
	}
	return "queues", view{Title: "Work queues", Nav: "queues", Page: "queues", Data: qs}, nil
}

// statsChart is the dashboard's chart: the runs of the last day by hour
// and state, as a table the chart is drawn from.
type statsChart struct {
	apitype.RunStats
	URL string // its JSON twin
}

// statsQuery is the dashboard chart's query of GET /api/v1/stats/runs.
var statsQuery = url.Values{"since": {"24h"}, "bucket": {"1h"}}

// opsFuncs are the template functions of the operations pages.
var opsFuncs = template.FuncMap{
	"deploymentPath": func(name string) string { return "/deployments/" + url.PathEscape(name) },
	"pathEscape":     url.PathEscape,
	"safeID":         safeID,
	"bytes": func(n int64) string {
		const unit = 1024
		if n < unit {
			return strconv.FormatInt(n, 10) + " B"
		}
		div, exp := int64(unit), 0
		for m := n / unit; m >= unit; m /= unit {
			div *= unit
			exp++
		}
		return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
	},
}

func init() {
	stateIcons["AWAITING_SLOT"] = "⧖"
	for k, v := range opsFuncs {
		funcs[k] = v
	}
}
