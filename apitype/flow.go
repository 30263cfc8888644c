package apitype

import (
	"encoding/json"
	"time"
)

// Flow is a flow as the latest worker registration of it described it
// (GET /flows and /flows/{name}).
type Flow struct {
	Name string `json:"name"`
	// RegisteredAt is when a worker last registered the flow.
	RegisteredAt time.Time `json:"registered_at"`
	// ParameterSchema is the JSON Schema of the flow's parameters (absent
	// when the worker sent none); Defaults are the parameters a run gets
	// for those it is not given (absent for none).
	ParameterSchema json.RawMessage `json:"parameter_schema,omitempty"`
	Defaults        json.RawMessage `json:"defaults,omitempty"`
	// Deployments are the deployments of the flow, by name.
	Deployments []FlowDeployment `json:"deployments"`
	// RunsLink is the runs list of the flow: GET /api/v1/runs?flow={name}.
	RunsLink string `json:"runs_link"`
}

// FlowDeployment is a deployment of a flow, as its flow lists it.
type FlowDeployment struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
	// NextFire is the earliest next fire time of its active schedules
	// (absent when it has none or is paused).
	NextFire *time.Time `json:"next_fire,omitempty"`
	// Schedules is how many schedules it has, paused or not.
	Schedules int `json:"schedules"`
}

// FlowList is the body of GET /flows: every registered flow, by name.
type FlowList struct {
	Flows []Flow `json:"flows"`
}
