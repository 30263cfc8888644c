package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
)

// The API endpoints of the web UI's dashboard and operations pages
// (/deployments, /workers, /limits, /queues), and the readers the UI's
// Source calls for them: each page shows what its JSON twin returns.

// uiPageRoutes are the API routes added for the dashboard's chart.
func (s *Server) uiPageRoutes() []route {
	return []route{
		{method: "GET", pattern: apitype.Prefix + "/stats/runs", summary: "Runs created in a range (since: a time or a duration before now, default 24h; until: default now) counted by bucket of creation time (bucket: a duration, default 1h, at most 1000 buckets) and by state", tag: "runs", query: apitype.RunStatsQueryParams, response: "RunStats", handle: s.runStatsHandler},
	}
}

// maxStatsBuckets bounds the buckets of GET /stats/runs.
const maxStatsBuckets = 1000

// parseQueryTime reads a time of the query parameter name with the parser
// the command line uses too (api.ParseTime).
func parseQueryTime(name, v string) (time.Time, error) {
	t, err := api.ParseTime(fmt.Sprintf("query parameter %q", name), v)
	if err != nil {
		return t, errBadRequest("%v", err)
	}
	return t, nil
}

// runStatsQuery reads the query of GET /stats/runs at now.
func runStatsQuery(get func(string) string, now time.Time) (store.RunStatsParams, error) {
	p := store.RunStatsParams{Since: now.Add(-24 * time.Hour), Until: now, Bucket: time.Hour}
	if v := get("until"); v != "" {
		t, err := parseQueryTime("until", v)
		if err != nil {
			return p, err
		}
		p.Until = t
	}
	if v := get("since"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			if d <= 0 {
				return p, errBadRequest("query parameter \"since\" as a duration must be positive (how long before now), got %q", v)
			}
			p.Since = now.Add(-d)
		} else {
			t, err := parseQueryTime("since", v)
			if err != nil {
				return p, errBadRequest("query parameter \"since\" must be a time (RFC 3339, \"2006-01-02T15:04\" or \"2006-01-02\") or a duration before now such as \"24h\", got %q", v)
			}
			p.Since = t
		}
	}
	if v := get("bucket"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return p, errBadRequest("query parameter \"bucket\" must be a duration of at least 1s such as \"1h\", got %q", v)
		}
		p.Bucket = d
	}
	if !p.Until.After(p.Since) {
		return p, errBadRequest("query parameter \"since\" (%s) must be before \"until\" (%s)", p.Since.Format(time.RFC3339), p.Until.Format(time.RFC3339))
	}
	if n := (p.Until.Sub(p.Since) + p.Bucket - 1) / p.Bucket; n > maxStatsBuckets {
		return p, errBadRequest("query parameter \"bucket\": %v makes %d buckets of the range; at most %d are allowed", p.Bucket, n, maxStatsBuckets)
	}
	return p, nil
}

// runStats reads GET /api/v1/stats/runs for the query get.
func (s *Server) runStats(ctx context.Context, get func(string) string) (apitype.RunStats, error) {
	p, err := runStatsQuery(get, s.clk.Now())
	if err != nil {
		return apitype.RunStats{}, err
	}
	counts, err := s.st.RunStats(ctx, p)
	if err != nil {
		return apitype.RunStats{}, err
	}
	n := int((p.Until.Sub(p.Since) + p.Bucket - 1) / p.Bucket)
	out := apitype.RunStats{Since: p.Since, Until: p.Until, BucketSeconds: int64(p.Bucket / time.Second),
		States: []string{}, Buckets: make([]apitype.RunStatsBucket, n)}
	for i := range out.Buckets {
		out.Buckets[i] = apitype.RunStatsBucket{Start: p.Since.Add(time.Duration(i) * p.Bucket), Counts: map[string]int{}}
	}
	seen := map[string]bool{}
	for _, c := range counts {
		if c.Bucket < 0 || c.Bucket >= n {
			continue
		}
		b := &out.Buckets[c.Bucket]
		b.Counts[string(c.State)] += c.N
		b.Total += c.N
		seen[string(c.State)] = true
	}
	for _, st := range store.RunStates {
		if seen[string(st)] {
			out.States = append(out.States, string(st))
		}
	}
	return out, nil
}

func (s *Server) runStatsHandler(w http.ResponseWriter, r *http.Request) error {
	st, err := s.runStats(r.Context(), r.URL.Query().Get)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, st)
}

// deploymentsList reads GET /api/v1/deployments.
func (s *Server) deploymentsList(ctx context.Context) ([]apitype.Deployment, error) {
	ds, err := s.st.DeploymentList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitype.Deployment, len(ds))
	for i, d := range ds {
		out[i] = deploy.View(d, nil)
	}
	return out, nil
}

// deploymentView reads GET /api/v1/deployments/{name}: the deployment with
// its history and its flow's parameter schema.
func (s *Server) deploymentView(ctx context.Context, name string) (apitype.Deployment, error) {
	d, err := s.deploy.Get(ctx, name)
	if err != nil {
		return apitype.Deployment{}, deployErr(err)
	}
	hist, err := s.st.DeploymentHistoryList(ctx, name, 0, 0)
	if err != nil {
		return apitype.Deployment{}, err
	}
	v := deploy.View(d, hist)
	fs, err := s.flowSchema(ctx, d.Flow)
	if err != nil {
		return apitype.Deployment{}, err
	}
	if fs.known && len(fs.info.Parameters) > 0 && json.Valid(fs.info.Parameters) {
		v.ParameterSchema = fs.info.Parameters
	}
	return v, nil
}

// deploymentNext reads GET /api/v1/deployments/{name}/next?count=.
func (s *Server) deploymentNext(ctx context.Context, name string, count int) (apitype.DeploymentNext, error) {
	fires, err := s.deploy.Next(ctx, name, count)
	if err != nil {
		return apitype.DeploymentNext{}, deployErr(err)
	}
	return deploy.NextView(name, fires), nil
}

// limitsList reads GET /api/v1/limits.
func (s *Server) limitsList(ctx context.Context) ([]apitype.Limit, error) {
	ls, err := s.st.LimitList(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make([]apitype.Limit, len(ls))
	for i, l := range ls {
		out[i] = api.LimitJSON(l)
	}
	return out, nil
}

// runFilters reads the filters of GET /runs that RunListParams has beyond
// flow, queue, q and state: deployment, tag and the creation time range.
func runFilters(get func(string) string, p *store.RunListParams) error {
	p.Deployment, p.Tag = get("deployment"), get("tag")
	for _, k := range []string{"deployment", "tag"} {
		if err := store.CheckIdentifier("query parameter \""+k+"\"", get(k)); err != nil {
			return errBadRequest("%v", err)
		}
	}
	var err error
	if v := get("created_from"); v != "" {
		if p.CreatedFrom, err = parseQueryTime("created_from", v); err != nil {
			return err
		}
	}
	if v := get("created_to"); v != "" {
		if p.CreatedTo, err = parseQueryTime("created_to", v); err != nil {
			return err
		}
	}
	if err := api.CheckTimeRange(`query parameter "created_from"`, `query parameter "created_to"`, p.CreatedFrom, p.CreatedTo); err != nil {
		return errBadRequest("%v", err)
	}
	return nil
}
