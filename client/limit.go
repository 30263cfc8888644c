package client

import (
	"context"
	"net/url"

	"github.com/batonhq/baton/apitype"
)

// Limits lists the tag concurrency limits, each with the task runs holding
// its slots.
func (c *Client) Limits(ctx context.Context) ([]apitype.Limit, error) {
	var out struct {
		Limits []apitype.Limit `json:"limits"`
	}
	err := c.do(ctx, "GET", apitype.Prefix+"/limits", nil, &out)
	return out.Limits, err
}

// SetLimit sets the concurrency limit of tag to n slots (n >= 0): at most n
// task runs carrying the tag are RUNNING at once, on every worker.
func (c *Client) SetLimit(ctx context.Context, tag string, n int) (apitype.Limit, error) {
	var out apitype.Limit
	err := c.do(ctx, "PUT", apitype.Prefix+"/limits/"+url.PathEscape(tag), apitype.SetLimitRequest{Limit: &n}, &out)
	return out, err
}

// DeleteLimit removes the concurrency limit of tag.
func (c *Client) DeleteLimit(ctx context.Context, tag string) error {
	return c.do(ctx, "DELETE", apitype.Prefix+"/limits/"+url.PathEscape(tag), nil, nil)
}

// SetQueue declares a queue (create), or changes it: action "" sets the
// fields of req, "pause" pauses it with req.Note, "resume" resumes it.
func (c *Client) SetQueue(ctx context.Context, req apitype.QueueRequest, create bool, action string) (apitype.Queue, error) {
	var out apitype.Queue
	path := apitype.Prefix + "/queues"
	if !create {
		path += "/" + url.PathEscape(req.Name)
		if action != "" {
			path += "/" + action
		}
		req.Name = ""
	}
	err := c.do(ctx, "POST", path, req, &out)
	return out, err
}
