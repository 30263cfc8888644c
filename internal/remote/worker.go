package remote

import (
	"context"
	"net/url"

	"github.com/batonhq/baton/internal/transport"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// Client is a worker's connection to one or more Baton servers (servers
// sharing one database; it fails over between them). It is safe for
// concurrent use.
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

// RegisterWorker registers a worker and returns its ID and timings.
func (c *Client) RegisterWorker(ctx context.Context, req api.RegisterWorker) (api.Registered, error) {
	var out api.Registered
	err := c.t.Do(ctx, "POST", apitype.Prefix+"/workers", req, &out)
	return out, err
}

// Heartbeat keeps a worker's leases and returns the runs to cancel. With
// req.WaitMS and the Generation of the previous answer, the server holds the
// request until that list changes or WaitMS passes.
func (c *Client) Heartbeat(ctx context.Context, workerID string, req api.HeartbeatRequest) (api.Heartbeat, error) {
	var out api.Heartbeat
	err := c.t.Do(ctx, "POST", apitype.Prefix+"/workers/"+url.PathEscape(workerID)+"/heartbeat", req, &out)
	return out, err
}

// Deregister releases everything a worker holds.
func (c *Client) Deregister(ctx context.Context, workerID string) error {
	return c.t.Do(ctx, "DELETE", apitype.Prefix+"/workers/"+url.PathEscape(workerID), nil, nil)
}

// Claim claims runs and task runs, waiting up to req.WaitMS for work. A
// claim that fails in transit is not retried on another server (the first
// may have claimed work): the caller should report what it holds (Holding).
func (c *Client) Claim(ctx context.Context, workerID string, req api.Claim) (api.Claimed, error) {
	var out api.Claimed
	req.Completions = store.WireCompletions(req.Completions)
	err := c.t.DoOnce(ctx, "POST", apitype.Prefix+"/workers/"+url.PathEscape(workerID)+"/claim", req, &out)
	return out, err
}

// Complete reports finished task runs; it returns those applied.
func (c *Client) Complete(ctx context.Context, workerID string, cs []store.TaskRunCompletion) ([]store.TaskRunRef, error) {
	var out api.Completed
	err := c.t.Do(ctx, "POST", apitype.Prefix+"/workers/"+url.PathEscape(workerID)+"/complete", api.Complete{Completions: store.WireCompletions(cs)}, &out)
	return out.Applied, err
}

// Holding reports what a worker holds; the server gives back its other
// claims (those whose response the worker never received).
func (c *Client) Holding(ctx context.Context, workerID string, h api.Holding) error {
	return c.t.Do(ctx, "POST", apitype.Prefix+"/workers/"+url.PathEscape(workerID)+"/holding", h, nil)
}

// GiveBack gives back a run that the worker cannot go on executing at the
// given attempt: the server crashes it and reschedules it from its journal.
// A run the worker no longer holds there is a 409 (see transport.IsConflict).
func (c *Client) GiveBack(ctx context.Context, workerID, runID string, attempt int, reason string) error {
	return c.t.Do(ctx, "POST", apitype.Prefix+"/workers/"+url.PathEscape(workerID)+"/runs/"+url.PathEscape(runID)+"/give-back",
		api.GiveBack{Attempt: attempt, Reason: reason}, nil)
}
