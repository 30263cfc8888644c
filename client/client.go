// Package client is the Go client of Baton's HTTP API: create runs of the
// flows that workers serve, wait for them and read their results, list,
// cancel and retry runs, read their logs, and list workers and queues. It
// takes and returns the API's JSON documents (package apitype) and works
// from any module:
//
//	c, err := client.New("http://127.0.0.1:8420")
//	run, _, err := c.CreateRun(ctx, apitype.CreateRunRequest{Flow: "etl",
//		Parameters: json.RawMessage(`{"rows": 100}`)})
//	run, err = c.WaitRun(ctx, run.ID)
//	if run.State == apitype.RunCompleted {
//		fmt.Println(string(run.Result))
//	}
//
// A Client may be given several server URLs (servers sharing one database);
// when a server cannot be reached it moves on to the next.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/transport"
)

// Error is an error response of the API: its HTTP status and the code
// (apitype.Code...) and message of its body.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// ErrUnreachable is wrapped by the errors of requests that reached no
// server, or whose connection broke before the answer was read: whether the
// server applied such a request is unknown.
var ErrUnreachable = transport.ErrUnreachable

// IsTransient reports whether err may go away if the request is sent again
// later: no server could be reached (ErrUnreachable), or one answered 502,
// 503 (such as its database being unavailable) or 504. Other API errors
// (400, 404, 409, 413, 500) are permanent: the same request will fail again.
func IsTransient(err error) bool {
	if errors.Is(err, ErrUnreachable) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// IsConflict reports whether err is a 409 from the API: the change is not
// allowed in the run's state, or an idempotency key was reused.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// IsNotFound reports whether err is a 404 from the API, such as an unknown
// run id.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Client talks to one or more Baton servers. It is safe for concurrent use.
type Client struct {
	t *transport.Client
}

// New returns a client for the servers at the given base URLs (such as
// http://127.0.0.1:8420); a single argument may hold several URLs separated
// by commas.
func New(urls ...string) (*Client, error) {
	t, err := transport.New(urls...)
	if err != nil {
		return nil, err
	}
	return &Client{t: t}, nil
}

// SetActor names who the client's requests act for: the name is sent in
// the X-Baton-Actor header (apitype.ActorHeader) and recorded in the
// histories of the runs they change, marked unverified (the API does not
// authenticate). Empty sends no name. It must be called before the client
// is used.
func (c *Client) SetActor(name string) { c.t.SetHeader(apitype.ActorHeader, name) }

// apiError turns the transport's error response into an *Error.
func apiError(err error) error {
	if te, ok := err.(*transport.Error); ok {
		return &Error{Status: te.Status, Code: te.Code, Message: te.Message}
	}
	return err
}

// do sends a request with a JSON body (nil for none) and decodes a JSON
// response into out (nil to discard).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return apiError(c.t.Do(ctx, method, path, body, out))
}

// CreateRun creates a run; created is false when the idempotency key
// matched an existing run, which is returned.
func (c *Client) CreateRun(ctx context.Context, req apitype.CreateRunRequest) (run apitype.Run, created bool, err error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return run, false, err
	}
	err = c.t.DoRaw(ctx, "POST", apitype.Prefix+"/runs", "application/json", payload, func(status int, r io.Reader) error {
		created = status == http.StatusCreated
		return json.NewDecoder(r).Decode(&run)
	})
	return run, created, apiError(err)
}

// ListRunsParams filters ListRuns; empty fields do not filter.
type ListRunsParams struct {
	Flow, State, Queue string
	// Deployment keeps the runs of that deployment, Tag those of the
	// deployments with that tag.
	Deployment, Tag string
	// CreatedFrom and CreatedTo keep the runs created at or after
	// CreatedFrom and before CreatedTo; zero means no bound.
	CreatedFrom, CreatedTo time.Time
	// Limit is the most runs returned; 0 means the server's default (50).
	Limit int
}

// ListRuns lists runs, newest first.
func (c *Client) ListRuns(ctx context.Context, p ListRunsParams) ([]apitype.Run, error) {
	q := url.Values{}
	for k, v := range map[string]string{"flow": p.Flow, "state": p.State, "queue": p.Queue, "deployment": p.Deployment, "tag": p.Tag} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !p.CreatedFrom.IsZero() {
		q.Set("created_from", p.CreatedFrom.UTC().Format(time.RFC3339Nano))
	}
	if !p.CreatedTo.IsZero() {
		q.Set("created_to", p.CreatedTo.UTC().Format(time.RFC3339Nano))
	}
	if p.Limit > 0 {
		q.Set("limit", fmt.Sprint(p.Limit))
	}
	var out struct {
		Runs []apitype.Run `json:"runs"`
	}
	err := c.do(ctx, "GET", apitype.Prefix+"/runs?"+q.Encode(), nil, &out)
	return out.Runs, err
}

// GetRun returns a run with its task runs and history.
func (c *Client) GetRun(ctx context.Context, id string) (apitype.RunDetail, error) {
	var out apitype.RunDetail
	err := c.do(ctx, "GET", apitype.Prefix+"/runs/"+url.PathEscape(id), nil, &out)
	return out, err
}

// GetRunPage returns a run with the page of its task runs and events that
// q asks for, their totals, and a summary of its task runs when q.Summary.
// A server that predates paging answers with the whole detail: then
// TaskRunsTotal is nil.
func (c *Client) GetRunPage(ctx context.Context, id string, q apitype.PageQuery) (apitype.RunPage, error) {
	var out apitype.RunPage
	path := apitype.Prefix + "/runs/" + url.PathEscape(id)
	if v := q.Values(); len(v) > 0 {
		path += "?" + v.Encode()
	} else {
		path += "?task_runs_offset=0" // ask for the paged form (with totals)
	}
	err := c.do(ctx, "GET", path, nil, &out)
	return out, err
}

// RunLogs returns a run's logs, optionally of one step key.
func (c *Client) RunLogs(ctx context.Context, id, taskKey string) ([]apitype.Log, error) {
	return c.SearchRunLogs(ctx, id, apitype.LogFilter{Task: taskKey})
}

// SearchRunLogs returns the logs of a run that f matches, searched on the
// server: of a step or a task run, with a text in the message, at a level
// or above.
func (c *Client) SearchRunLogs(ctx context.Context, id string, f apitype.LogFilter) ([]apitype.Log, error) {
	q := ""
	if v := f.Values(); len(v) > 0 {
		q = "?" + v.Encode()
	}
	var out struct {
		Logs []apitype.Log `json:"logs"`
	}
	err := c.do(ctx, "GET", apitype.Prefix+"/runs/"+url.PathEscape(id)+"/logs"+q, nil, &out)
	return out.Logs, err
}

// RunHistory returns a page of a run's append-only history, oldest first:
// at most limit entries (0: the server's default, 1000) after the entry
// whose seq is after (0: from the start). When more follow, the page's
// NextAfter is the after of the next page.
func (c *Client) RunHistory(ctx context.Context, id string, after int64, limit int) (apitype.HistoryPage, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", fmt.Sprint(after))
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	path := apitype.Prefix + "/runs/" + url.PathEscape(id) + "/history"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out apitype.HistoryPage
	err := c.do(ctx, "GET", path, nil, &out)
	return out, err
}

// SendInput sends input to a run's wait (baton.WaitForInput), or with no
// Value resumes a baton.Pause. A value that fails the wait's JSON Schema
// is refused with a 422 *Error listing every violation.
func (c *Client) SendInput(ctx context.Context, id string, req apitype.InputRequest) (apitype.InputResult, error) {
	var out apitype.InputResult
	err := c.do(ctx, "POST", apitype.Prefix+"/runs/"+url.PathEscape(id)+"/input", req, &out)
	return out, err
}

// SendEvent sends an event to the runs waiting for it (baton.WaitForEvent).
func (c *Client) SendEvent(ctx context.Context, req apitype.EventRequest) (apitype.EventResult, error) {
	var out apitype.EventResult
	err := c.do(ctx, "POST", apitype.Prefix+"/events", req, &out)
	return out, err
}

// CancelRun cancels a run (a running one moves to CANCELLING until its
// worker stops it).
func (c *Client) CancelRun(ctx context.Context, id string) (apitype.Run, error) {
	var out apitype.Run
	err := c.do(ctx, "POST", apitype.Prefix+"/runs/"+url.PathEscape(id)+"/cancel", nil, &out)
	return out, err
}

// RetryRun schedules a new attempt of a FAILED, CANCELLED or CRASHED run.
func (c *Client) RetryRun(ctx context.Context, id string) (apitype.Run, error) {
	var out apitype.Run
	err := c.do(ctx, "POST", apitype.Prefix+"/runs/"+url.PathEscape(id)+"/retry", nil, &out)
	return out, err
}

// RetryRunWith is RetryRun with edited parameters (req.Parameters, merged
// over the run's by the server, which validates them) and who asks.
func (c *Client) RetryRunWith(ctx context.Context, id string, req apitype.RetryRunRequest) (apitype.Run, error) {
	var out apitype.Run
	err := c.do(ctx, "POST", apitype.Prefix+"/runs/"+url.PathEscape(id)+"/retry", req, &out)
	return out, err
}

// Workers lists the live workers.
func (c *Client) Workers(ctx context.Context) ([]apitype.Worker, error) {
	var out struct {
		Workers []apitype.Worker `json:"workers"`
	}
	err := c.do(ctx, "GET", apitype.Prefix+"/workers", nil, &out)
	return out.Workers, err
}

// Queues lists queue depths.
func (c *Client) Queues(ctx context.Context) ([]apitype.Queue, error) {
	var out struct {
		Queues []apitype.Queue `json:"queues"`
	}
	err := c.do(ctx, "GET", apitype.Prefix+"/queues", nil, &out)
	return out.Queues, err
}

// Retention deletes finished runs older than olderThan (such as "30d").
func (c *Client) Retention(ctx context.Context, olderThan string) (apitype.RetentionResult, error) {
	var out apitype.RetentionResult
	err := c.do(ctx, "POST", apitype.Prefix+"/retention", apitype.RetentionRequest{OlderThan: olderThan}, &out)
	return out, err
}

// WaitRun waits until the run has ended (apitype.Ended: COMPLETED, FAILED,
// CANCELLED or CRASHED) and returns it, with its result or error; it
// returns early with ctx's error. It reads the run (without its task runs)
// every 20ms at first, then less often, up to every second.
func (c *Client) WaitRun(ctx context.Context, id string) (apitype.Run, error) {
	wait := 20 * time.Millisecond
	for {
		p, err := c.GetRunPage(ctx, id, apitype.PageQuery{})
		if err != nil {
			return p.Run, err
		}
		if apitype.Ended(p.State) {
			return p.Run, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return p.Run, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// PauseRun asks a running run to pause at its next step boundary (with
// reason, shown with the pause); it resumes with SendInput (no value), as a
// baton.Pause does. A PAUSED run is left as it is; a finished one is a 409.
func (c *Client) PauseRun(ctx context.Context, id string, req apitype.PauseRunRequest) (apitype.Run, error) {
	var out apitype.Run
	err := c.do(ctx, "POST", apitype.Prefix+"/runs/"+url.PathEscape(id)+"/pause", req, &out)
	return out, err
}

// UpdateRun changes a running or paused run's parameters (merged over its
// current ones and validated by the server); the flow reads them with
// baton.Settings.
func (c *Client) UpdateRun(ctx context.Context, id string, req apitype.UpdateRunRequest) (apitype.Run, error) {
	var out apitype.Run
	err := c.do(ctx, "POST", apitype.Prefix+"/runs/"+url.PathEscape(id)+"/update", req, &out)
	return out, err
}
