package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// Run parameters are validated against the schema that the latest worker
// registration of the flow recorded in the store (FlowUpsert), with any
// server sharing the store: a server that did not see the registration, or
// that restarted since, validates the same way. Servers keep what they read
// for flowCacheTTL, so creating runs costs no extra read but one per flow
// every few seconds, and a registration through another server is seen
// within that time (a registration through this one at once).

// flowCacheTTL is how long a server uses a flow's registration read from the
// store (or the fact that there is none) before it reads it again.
const flowCacheTTL = 2 * time.Second

// maxCachedFlows bounds the cache: flow names come from requests.
const maxCachedFlows = 10000

// flowSchema is what a worker registered about a flow's parameters, as this
// server last read it.
type flowSchema struct {
	known bool // a worker registered the flow
	info  store.Flow
	v     *params.Validator // nil when the worker sent no schema
	read  time.Time         // when this server read (or recorded) it
}

// flowRecord is the store's record of a flow a worker registers at time at.
func flowRecord(f api.FlowInfo, at time.Time) (store.Flow, error) {
	rec := store.Flow{Name: f.Name, RegisteredAt: at}
	if f.Parameters != nil {
		b, err := json.Marshal(f.Parameters)
		if err != nil {
			return store.Flow{}, err
		}
		rec.Parameters = b
	}
	if t := bytes.TrimSpace(f.Defaults); len(t) > 0 && string(t) != "null" {
		rec.Defaults = f.Defaults
	}
	return rec, nil
}

// newFlowSchema compiles the validator of a recorded flow, read at time read.
func newFlowSchema(f store.Flow, read time.Time) (flowSchema, error) {
	fs := flowSchema{known: true, info: f, read: read}
	if f.Parameters == nil {
		return fs, nil
	}
	dec := json.NewDecoder(bytes.NewReader(f.Parameters))
	dec.UseNumber()
	var schema map[string]any
	if err := dec.Decode(&schema); err != nil {
		return flowSchema{}, err
	}
	if schema == nil {
		return fs, nil
	}
	v, err := params.NewValidator(schema)
	if err != nil {
		return flowSchema{}, err
	}
	fs.v = v
	return fs, nil
}

// cacheFlows records flow schemas this server has just read or written.
func (s *Server) cacheFlows(fss map[string]flowSchema) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.flows)+len(fss) > maxCachedFlows {
		s.flows = make(map[string]flowSchema, len(fss))
	}
	for name, fs := range fss {
		s.flows[name] = fs
	}
}

// flowSchema returns the latest registration of a flow (known false when no
// worker registered it), from the cache while it is fresh, else from the
// store.
func (s *Server) flowSchema(ctx context.Context, name string) (flowSchema, error) {
	now := s.clk.Now()
	s.mu.Lock()
	cached, ok := s.flows[name]
	s.mu.Unlock()
	if ok && now.Sub(cached.read) < flowCacheTTL {
		return cached, nil
	}
	f, err := s.st.FlowGet(ctx, name)
	var fs flowSchema
	switch {
	case errors.Is(err, store.ErrNotFound):
		fs = flowSchema{read: now}
	case err != nil:
		return flowSchema{}, fmt.Errorf("read the parameter schema of flow %q: %w", name, err)
	case ok && cached.known && cached.info.RegisteredAt.Equal(f.RegisteredAt):
		fs = cached // the same registration: keep its compiled validator
		fs.read = now
	default:
		if fs, err = newFlowSchema(f, now); err != nil {
			return flowSchema{}, fmt.Errorf("flow %q: recorded parameter schema: %w", name, err)
		}
	}
	s.cacheFlows(map[string]flowSchema{name: fs})
	return fs, nil
}

// checkParams assembles the parameters of a run created through the API.
// When a worker registered the flow (with any server sharing the store),
// the parameters are merged over the flow's defaults and validated against
// its schema, with the validation the command line uses
// (params.Validator), so a defect gets a 400 naming the parameter, in the
// command line's words. A flow no worker has registered yet is accepted as
// given (its worker may start later); its worker's engine then rejects
// parameters that do not decode.
func (s *Server) checkParams(ctx context.Context, flow string, raw json.RawMessage) (json.RawMessage, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		raw = nil
	}
	fs, err := s.flowSchema(ctx, flow)
	if err != nil {
		return nil, err
	}
	if !fs.known || fs.v == nil {
		switch {
		case raw != nil:
			return raw, nil
		case fs.known && len(fs.info.Defaults) > 0:
			return fs.info.Defaults, nil
		}
		return json.RawMessage("null"), nil
	}
	out, err := fs.v.Resolve(flow, fs.info.Defaults, raw)
	if err != nil {
		return nil, errBadRequest("%v", err)
	}
	return out, nil
}

// editParams assembles the parameters of a retry that edits run's: given
// is merged over the run's parameters and validated against the flow's
// schema as checkParams does for a new run (a 400 naming the parameter).
// Without a registered schema, an object is merged key by key over the
// run's (an object too) and anything else replaces them.
func (s *Server) editParams(ctx context.Context, run store.Run, given json.RawMessage) (json.RawMessage, error) {
	fs, err := s.flowSchema(ctx, run.Flow)
	if err != nil {
		return nil, err
	}
	out, err := api.MergeParams(fs.v, run, given)
	if err != nil {
		return nil, errBadRequest("%v", err)
	}
	return out, nil
}
