// Package client is the Go client of Baton's HTTP API: creating, listing,
// cancelling and retrying runs, listing workers and queues, and the worker
// and engine protocols that workers use instead of a database connection.
//
// A Client may be given several server URLs (servers sharing one database);
// when a server cannot be reached it moves on to the next.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/batonhq/baton/internal/api"
)

// Error is an error response of the API.
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
var ErrUnreachable = errors.New("baton server unreachable")

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

// IsConflict reports whether err is a 409 from the API.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// IsNotFound reports whether err is a 404 from the API.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Client talks to one or more Baton servers. It is safe for concurrent use.
type Client struct {
	bases []string
	next  atomic.Int64
	hc    *http.Client
}

// New returns a client for the servers at the given base URLs (such as
// http://127.0.0.1:8420); a single argument may hold several URLs separated
// by commas.
func New(urls ...string) (*Client, error) {
	var bases []string
	for _, u := range urls {
		for _, part := range strings.Split(u, ",") {
			part = strings.TrimRight(strings.TrimSpace(part), "/")
			if part == "" {
				continue
			}
			pu, err := url.Parse(part)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return nil, fmt.Errorf("invalid server URL %q: expected http://HOST:PORT", part)
			}
			bases = append(bases, part)
		}
	}
	if len(bases) == 0 {
		return nil, errors.New("no server URL given")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{bases: bases, hc: &http.Client{Transport: tr}}, nil
}

// do sends a request with a JSON body (nil for none) and decodes a JSON
// response into out (nil to discard). Requests that cannot reach a server
// are tried on the next one.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.call(ctx, method, path, body, out, true)
}

// call is do with a choice: with retry false, a request that fails in
// transit is not sent again to the next server (the next call goes there),
// because the first server may have applied it: claims must not be lost.
func (c *Client) call(ctx context.Context, method, path string, body, out any, retry bool) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	read := func(_ int, r io.Reader) error {
		if out == nil {
			_, err := io.Copy(io.Discard, r)
			return err
		}
		return json.NewDecoder(r).Decode(out)
	}
	if !retry {
		return c.once(ctx, method, path, "application/json", payload, read)
	}
	return c.doRaw(ctx, method, path, "application/json", payload, read)
}

func (c *Client) doRaw(ctx context.Context, method, path, ctype string, payload []byte, read func(status int, r io.Reader) error) error {
	return c.send(ctx, method, path, ctype, payload, read, len(c.bases))
}

// once sends a request to the current server only.
func (c *Client) once(ctx context.Context, method, path, ctype string, payload []byte, read func(status int, r io.Reader) error) error {
	return c.send(ctx, method, path, ctype, payload, read, 1)
}

// send tries up to tries servers, moving on when one cannot be reached.
func (c *Client) send(ctx context.Context, method, path, ctype string, payload []byte, read func(status int, r io.Reader) error, tries int) error {
	var lastErr error
	for try := range tries {
		i := int(c.next.Load()) % len(c.bases)
		req, err := http.NewRequestWithContext(ctx, method, c.bases[i]+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		if payload != nil {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = err
			c.next.CompareAndSwap(int64(i), int64(i+1)) // fail over
			if try < tries-1 {
				continue
			}
			return fmt.Errorf("%w: %w", ErrUnreachable, lastErr)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 400 {
			var e api.Error
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
				e.Error = api.ErrorBody{Code: "http", Message: strings.TrimSpace(string(b))}
			}
			if resp.StatusCode == http.StatusServiceUnavailable && try < tries-1 {
				c.next.CompareAndSwap(int64(i), int64(i+1))
				continue
			}
			return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		if err := read(resp.StatusCode, resp.Body); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
				// The connection broke while the answer was read.
				return fmt.Errorf("%w: reading the answer: %w", ErrUnreachable, err)
			}
			return err
		}
		return nil
	}
	return lastErr
}

// CreateRun creates a run; created is false when the idempotency key
// matched an existing run, which is returned.
func (c *Client) CreateRun(ctx context.Context, req api.CreateRun) (run api.RunView, created bool, err error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return run, false, err
	}
	err = c.doRaw(ctx, "POST", api.Prefix+"/runs", "application/json", payload, func(status int, r io.Reader) error {
		created = status == http.StatusCreated
		return json.NewDecoder(r).Decode(&run)
	})
	return run, created, err
}

// ListRunsParams filters ListRuns.
type ListRunsParams struct {
	Flow, State, Queue string
	Limit              int
}

// ListRuns lists runs, newest first.
func (c *Client) ListRuns(ctx context.Context, p ListRunsParams) ([]api.RunView, error) {
	q := url.Values{}
	for k, v := range map[string]string{"flow": p.Flow, "state": p.State, "queue": p.Queue} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if p.Limit > 0 {
		q.Set("limit", fmt.Sprint(p.Limit))
	}
	var out struct {
		Runs []api.RunView `json:"runs"`
	}
	err := c.do(ctx, "GET", api.Prefix+"/runs?"+q.Encode(), nil, &out)
	return out.Runs, err
}

// GetRun returns a run with its task runs and history.
func (c *Client) GetRun(ctx context.Context, id string) (api.RunDetailView, error) {
	var out api.RunDetailView
	err := c.do(ctx, "GET", api.Prefix+"/runs/"+url.PathEscape(id), nil, &out)
	return out, err
}

// GetRunPage returns a run with the page of its task runs and events that
// q asks for, their totals, and a summary of its task runs when q.Summary.
// A server that predates paging answers with the whole detail: then
// TaskRunsTotal is nil.
func (c *Client) GetRunPage(ctx context.Context, id string, q api.PageQuery) (api.RunPageView, error) {
	var out api.RunPageView
	path := api.Prefix + "/runs/" + url.PathEscape(id)
	if v := q.Values(); len(v) > 0 {
		path += "?" + v.Encode()
	} else {
		path += "?task_runs_offset=0" // ask for the paged form (with totals)
	}
	err := c.do(ctx, "GET", path, nil, &out)
	return out, err
}

// RunLogs returns a run's logs, optionally of one step key.
func (c *Client) RunLogs(ctx context.Context, id, taskKey string) ([]api.LogView, error) {
	q := ""
	if taskKey != "" {
		q = "?task=" + url.QueryEscape(taskKey)
	}
	var out struct {
		Logs []api.LogView `json:"logs"`
	}
	err := c.do(ctx, "GET", api.Prefix+"/runs/"+url.PathEscape(id)+"/logs"+q, nil, &out)
	return out.Logs, err
}

// CancelRun cancels a run (a running one moves to CANCELLING until its
// worker stops it).
func (c *Client) CancelRun(ctx context.Context, id string) (api.RunView, error) {
	var out api.RunView
	err := c.do(ctx, "POST", api.Prefix+"/runs/"+url.PathEscape(id)+"/cancel", nil, &out)
	return out, err
}

// RetryRun schedules a new attempt of a FAILED, CANCELLED or CRASHED run.
func (c *Client) RetryRun(ctx context.Context, id string) (api.RunView, error) {
	var out api.RunView
	err := c.do(ctx, "POST", api.Prefix+"/runs/"+url.PathEscape(id)+"/retry", nil, &out)
	return out, err
}

// RetryRunWith is RetryRun with edited parameters (req.Parameters, merged
// over the run's by the server, which validates them) and who asks.
func (c *Client) RetryRunWith(ctx context.Context, id string, req api.RetryRun) (api.RunView, error) {
	var out api.RunView
	err := c.do(ctx, "POST", api.Prefix+"/runs/"+url.PathEscape(id)+"/retry", req, &out)
	return out, err
}

// Workers lists the live workers.
func (c *Client) Workers(ctx context.Context) ([]api.WorkerView, error) {
	var out struct {
		Workers []api.WorkerView `json:"workers"`
	}
	err := c.do(ctx, "GET", api.Prefix+"/workers", nil, &out)
	return out.Workers, err
}

// Queues lists queue depths.
func (c *Client) Queues(ctx context.Context) ([]api.QueueView, error) {
	var out struct {
		Queues []api.QueueView `json:"queues"`
	}
	err := c.do(ctx, "GET", api.Prefix+"/queues", nil, &out)
	return out.Queues, err
}

// Retention deletes finished runs older than olderThan (such as "30d").
func (c *Client) Retention(ctx context.Context, olderThan string) (api.RetentionResult, error) {
	var out api.RetentionResult
	err := c.do(ctx, "POST", api.Prefix+"/retention", api.Retention{OlderThan: olderThan}, &out)
	return out, err
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
