package client

import (
	"context"
	"net/url"

	"github.com/batonhq/baton/apitype"
)

// ListFlows returns every flow a worker registered, by name, with its
// parameter schema, defaults and deployments.
func (c *Client) ListFlows(ctx context.Context) ([]apitype.Flow, error) {
	var out apitype.FlowList
	err := c.do(ctx, "GET", apitype.Prefix+"/flows", nil, &out)
	return out.Flows, err
}

// GetFlow returns a registered flow; for a flow no worker registered the
// error satisfies IsNotFound.
func (c *Client) GetFlow(ctx context.Context, name string) (apitype.Flow, error) {
	var out apitype.Flow
	err := c.do(ctx, "GET", apitype.Prefix+"/flows/"+url.PathEscape(name), nil, &out)
	return out, err
}
