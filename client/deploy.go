package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/batonhq/baton/apitype"
)

func deploymentPath(name string) string {
	return apitype.Prefix + "/deployments/" + url.PathEscape(name)
}

// CreateDeployment creates a deployment (an error of status 409 when the
// name exists).
func (c *Client) CreateDeployment(ctx context.Context, req apitype.DeploymentRequest) (apitype.Deployment, error) {
	var out apitype.Deployment
	err := c.do(ctx, "POST", apitype.Prefix+"/deployments", req, &out)
	return out, err
}

// RegisterDeployment registers a deployment declared in code under name:
// idempotent, changed is false when the same declaration was registered.
func (c *Client) RegisterDeployment(ctx context.Context, name string, req apitype.DeploymentRequest) (d apitype.Deployment, changed bool, err error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return d, false, err
	}
	err = c.t.DoRaw(ctx, "PUT", deploymentPath(name), "application/json", payload, func(status int, r io.Reader) error {
		changed = status == http.StatusCreated
		return json.NewDecoder(r).Decode(&d)
	})
	return d, changed, apiError(err)
}

// UpdateDeployment replaces the declaration of a deployment.
func (c *Client) UpdateDeployment(ctx context.Context, name string, req apitype.DeploymentRequest) (apitype.Deployment, error) {
	var out apitype.Deployment
	err := c.do(ctx, "POST", deploymentPath(name)+"/update", req, &out)
	return out, err
}

// ListDeployments lists deployments by name.
func (c *Client) ListDeployments(ctx context.Context) ([]apitype.Deployment, error) {
	var out struct {
		Deployments []apitype.Deployment `json:"deployments"`
	}
	err := c.do(ctx, "GET", apitype.Prefix+"/deployments", nil, &out)
	return out.Deployments, err
}

// GetDeployment returns a deployment with its schedules and history.
func (c *Client) GetDeployment(ctx context.Context, name string) (apitype.Deployment, error) {
	var out apitype.Deployment
	err := c.do(ctx, "GET", deploymentPath(name), nil, &out)
	return out, err
}

// DeleteDeployment deletes a deployment.
func (c *Client) DeleteDeployment(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", deploymentPath(name), nil, nil)
}

// PauseDeployment pauses (paused true) or resumes a deployment, or one of
// its schedules (req.Schedule).
func (c *Client) PauseDeployment(ctx context.Context, name string, paused bool, req apitype.DeploymentPauseRequest) (apitype.Deployment, error) {
	op := "/pause"
	if !paused {
		op = "/resume"
	}
	var out apitype.Deployment
	err := c.do(ctx, "POST", deploymentPath(name)+op, req, &out)
	return out, err
}

// RunDeployment starts a run of a deployment now.
func (c *Client) RunDeployment(ctx context.Context, name string, req apitype.DeploymentRunRequest) (apitype.Run, error) {
	var out apitype.Run
	err := c.do(ctx, "POST", deploymentPath(name)+"/run", req, &out)
	return out, err
}

// NextDeployment previews the next count fire times of a deployment.
func (c *Client) NextDeployment(ctx context.Context, name string, count int) (apitype.DeploymentNext, error) {
	var out apitype.DeploymentNext
	err := c.do(ctx, "GET", deploymentPath(name)+"/next?count="+fmt.Sprint(count), nil, &out)
	return out, err
}

// BackfillDeployment creates the runs of the fire times of a past range.
func (c *Client) BackfillDeployment(ctx context.Context, name string, req apitype.BackfillRequest) (apitype.BackfillResult, error) {
	var out apitype.BackfillResult
	err := c.do(ctx, "POST", deploymentPath(name)+"/backfill", req, &out)
	return out, err
}
