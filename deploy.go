package baton

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
)

// DeploymentDef is a deployment declared in code: a flow with a unique
// name, default parameters, a work queue, tags, a description, an
// optional limit of active runs and schedules. The program registers its
// deployments with a server when its `worker` starts, and with `deploy`
// (on --server or the --db store). Registering the same declaration again
// changes nothing; a changed one updates the deployment (schedules kept
// by spec keep their id and their runs; runs of a removed schedule that
// have not started are cancelled). Pauses and their notes, made with
// `baton deployments pause`, survive a redeploy.
type DeploymentDef struct {
	req apitype.DeploymentRequest
}

// Name returns the deployment's name.
func (d *DeploymentDef) Name() string { return d.req.Name }

// deployRegistry holds the program's deployments, in declaration order.
var deployRegistry = struct {
	sync.Mutex
	defs []*DeploymentDef
}{}

// Deploy declares a deployment of flow named name, usually at package
// level next to the flow:
//
//	var nightly = baton.Deploy(train, "nightly", baton.Cron("0 3 * * *", "Europe/Berlin"),
//		baton.DeployParams(TrainParams{Epochs: 10}), baton.DeployQueue("gpu"))
//
// It panics when the declaration is invalid (an unknown time zone, a cron
// expression that does not parse, a negative limit, ...) or when another
// deployment has the name, as defining two flows under one name does.
func Deploy(flow AnyFlow, name string, opts ...DeployOption) *DeploymentDef {
	d := &DeploymentDef{req: apitype.DeploymentRequest{Name: name, Flow: flow.engineFlow().Name}}
	for _, o := range opts {
		if err := o.applyDeploy(&d.req); err != nil {
			panic(fmt.Sprintf("baton: deployment %q: %v", name, err))
		}
	}
	if _, err := deploy.Build(d.req, store.SourceCode, time.Now()); err != nil {
		panic(fmt.Sprintf("baton: deployment %q: %v", name, err))
	}
	deployRegistry.Lock()
	defer deployRegistry.Unlock()
	if slices.ContainsFunc(deployRegistry.defs, func(o *DeploymentDef) bool { return o.req.Name == name }) {
		panic(fmt.Sprintf("baton: deployment %q is declared twice", name))
	}
	deployRegistry.defs = append(deployRegistry.defs, d)
	return d
}

// registeredDeployments returns the declarations of the program's
// deployments.
func registeredDeployments() []apitype.DeploymentRequest {
	deployRegistry.Lock()
	defer deployRegistry.Unlock()
	out := make([]apitype.DeploymentRequest, len(deployRegistry.defs))
	for i, d := range deployRegistry.defs {
		out[i] = d.req
	}
	return out
}

// DeployOption configures a deployment: a schedule (Cron, Every,
// Interval, RRule) or a deployment setting (DeployParams, DeployQueue,
// DeployTags, DeployDescription, MaxActive).
type DeployOption interface {
	applyDeploy(*apitype.DeploymentRequest) error
}

type deployOptionFunc func(*apitype.DeploymentRequest) error

func (f deployOptionFunc) applyDeploy(r *apitype.DeploymentRequest) error { return f(r) }

// Overlap policies of a schedule (ScheduleSpec.Overlap): what a fire time
// does while an earlier run of the deployment is still active.
const (
	OverlapSkip        = store.OverlapSkip        // the new run is skipped (cancelled, in the history): the default
	OverlapBufferOne   = store.OverlapBufferOne   // one new run waits for the active one; more are skipped
	OverlapBufferAll   = store.OverlapBufferAll   // every new run waits, in order
	OverlapCancelOther = store.OverlapCancelOther // the active run is cancelled
	OverlapAllowAll    = store.OverlapAllowAll    // the new run starts anyway
)

// Collision policies of MaxActive: what a run beyond the limit does.
const (
	CollisionQueue        = store.CollisionQueue        // it waits in AWAITING_SLOT: the default
	CollisionSkip         = store.CollisionSkip         // it is cancelled
	CollisionCancelOldest = store.CollisionCancelOldest // the oldest active run is cancelled
)

// CatchupAll is the catch-up window that creates every fire time missed
// while no scheduler ran.
const CatchupAll = store.CatchupAll

// ScheduleSpec is a schedule of a deployment, a DeployOption. Its methods
// return a copy with one more setting.
type ScheduleSpec struct {
	s apitype.ScheduleRequest
}

func (s ScheduleSpec) applyDeploy(r *apitype.DeploymentRequest) error {
	r.Schedules = append(r.Schedules, s.s)
	return nil
}

// Cron is a schedule of a cron expression (5 fields, 6 with seconds first,
// or a macro such as @daily) in an IANA time zone ("" is UTC). Across
// daylight-saving changes each wall-clock time fires once: in the spring
// gap at the first instant after it, in the autumn overlap at its first
// occurrence.
func Cron(expr, timezone string) ScheduleSpec {
	return ScheduleSpec{apitype.ScheduleRequest{Cron: expr, Timezone: timezone}}
}

// RRule is a schedule of an RFC 5545 recurrence rule, such as
// "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0", in an IANA time zone.
func RRule(rule, timezone string) ScheduleSpec {
	return ScheduleSpec{apitype.ScheduleRequest{RRule: rule, Timezone: timezone}}
}

// Every is a schedule of a fixed interval counted from the Unix epoch (so
// Every(time.Hour) fires on the hour, UTC).
func Every(d time.Duration) ScheduleSpec {
	return ScheduleSpec{apitype.ScheduleRequest{Interval: d.String()}}
}

// Interval is a schedule of a fixed interval counted from anchor: fire
// times are anchor + k*d.
func Interval(d time.Duration, anchor time.Time) ScheduleSpec {
	a := anchor.UTC()
	return ScheduleSpec{apitype.ScheduleRequest{Interval: d.String(), Anchor: &a}}
}

// Overlap sets the schedule's overlap policy (OverlapSkip by default).
func (s ScheduleSpec) Overlap(policy string) ScheduleSpec {
	s.s.Overlap = policy
	return s
}

// Catchup sets how far back the fire times missed while no scheduler ran
// (a downtime) are created when it runs again: 0, the default, creates
// only the latest one; CatchupAll every one.
func (s ScheduleSpec) Catchup(window time.Duration) ScheduleSpec {
	s.s.Catchup = deploy.FormatCatchup(window)
	return s
}

// Jitter delays each run by a deterministic amount below max, the same on
// every server, to spread runs that share a fire time.
func (s ScheduleSpec) Jitter(max time.Duration) ScheduleSpec {
	s.s.Jitter = max.String()
	return s
}

// DeployParams sets the deployment's default parameters (merged over the
// flow's defaults; a run started by hand may override them). P should be
// the flow's parameter type; the fields JSON leaves out are not sent.
func DeployParams[P any](p P) DeployOption {
	return deployOptionFunc(func(r *apitype.DeploymentRequest) error {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode parameters: %w", err)
		}
		r.Parameters = b
		return nil
	})
}

// DeployQueue sets the work queue of the deployment's runs (default
// "default").
func DeployQueue(name string) DeployOption {
	return deployOptionFunc(func(r *apitype.DeploymentRequest) error { r.Queue = name; return nil })
}

// DeployTags sets the deployment's tags.
func DeployTags(tags ...string) DeployOption {
	return deployOptionFunc(func(r *apitype.DeploymentRequest) error { r.Tags = tags; return nil })
}

// DeployDescription says what the deployment is for.
func DeployDescription(s string) DeployOption {
	return deployOptionFunc(func(r *apitype.DeploymentRequest) error { r.Description = s; return nil })
}

// MaxActive bounds the deployment's active runs to n, with a collision
// policy for a run beyond it (CollisionQueue, CollisionSkip or
// CollisionCancelOldest; "" is CollisionQueue).
func MaxActive(n int, collision string) DeployOption {
	return deployOptionFunc(func(r *apitype.DeploymentRequest) error {
		r.MaxActive, r.Collision = n, collision
		return nil
	})
}

// Next returns the next n fire times after after of the deployment's
// schedules, merged in time order: what `baton deployments next` shows
// once the deployment is registered, to check a schedule in a test.
func (d *DeploymentDef) Next(after time.Time, n int) []time.Time {
	dep, err := deploy.Build(d.req, store.SourceCode, after)
	if err != nil {
		return nil // Deploy validated it
	}
	fires, err := deploy.NextFires(dep, after, n)
	if err != nil {
		return nil
	}
	out := make([]time.Time, len(fires))
	for i, f := range fires {
		out[i] = f.Local
	}
	return out
}
