package baton

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/batonhq/baton/internal/engine"
	paramcheck "github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// FlowDef is a flow: a named Go function that calls tasks and other flows.
// Create it with Flow, usually as a package-level variable. Run it from the
// command line with Main, from Go with Execute, or from another flow as a
// subflow with Run or Submit. A FlowDef is safe for concurrent use.
type FlowDef[P, R any] struct {
	def *engine.FlowDef
}

// AnyFlow is any FlowDef, whatever its types; Main takes it.
type AnyFlow interface {
	engineFlow() *engine.FlowDef
}

// flowRegistry records where each flow name was defined.
var flowRegistry = struct {
	sync.Mutex
	at map[string]string
}{at: map[string]string{}}

// Flow defines a flow named name that runs fn with parameters of type P
// (usually a struct; tag a field `baton:"required"` to make it required and
// `doc:"..."` to describe it). It panics on invalid options, like
// regexp.MustCompile, since flows are defined at package initialisation,
// and when a flow of that name was defined before (naming both places).
func Flow[P, R any](name string, fn func(Context, P) (R, error), opts ...FlowOption) *FlowDef[P, R] {
	if name == "" || fn == nil {
		panic("baton.Flow: a name and a function are required")
	}
	if err := store.CheckIdentifier("flow name", name); err != nil {
		panic("baton.Flow: " + err.Error())
	}
	site := callSite(2)
	def := &engine.FlowDef{
		Name:       name,
		ParamsType: typeOf[P](),
		Body: func(fc *engine.FlowCtx, params json.RawMessage) (any, error) {
			p, err := decodeStrict[P](params)
			if err != nil {
				// Say which parameter is wrong, in the words the command
				// line and the API use (a run created for a flow no worker
				// had registered yet was not checked).
				if verr := paramcheck.Explain(typeOf[P](), params); verr != nil {
					err = verr
				}
				return nil, Permanent(fmt.Errorf("parameters of flow %s: %w", name, err))
			}
			return fn(&flowContext{Context: fc.Context(), fc: fc}, p)
		},
	}
	for _, o := range opts {
		if err := o(&flowConfig{def: def}); err != nil {
			panic("baton.Flow: " + err.Error())
		}
	}
	flowRegistry.Lock()
	defer flowRegistry.Unlock()
	if prev, ok := flowRegistry.at[name]; ok {
		panic(fmt.Sprintf("baton.Flow: flow %q is defined twice, at %s and at %s; give each flow its own name", name, prev, site))
	}
	flowRegistry.at[name] = site
	return &FlowDef[P, R]{def: def}
}

func (f *FlowDef[P, R]) engineFlow() *engine.FlowDef { return f.def }

// Name returns the flow's name.
func (f *FlowDef[P, R]) Name() string { return f.def.Name }

// Run calls the flow as a subflow of the calling flow and waits for it. The
// subflow is a run of its own, linked to its parent; on a retried parent a
// completed subflow is reused and a failed one resumes from its journal.
func (f *FlowDef[P, R]) Run(ctx Context, p P, opts ...CallOption) (R, error) {
	return f.Submit(ctx, p, opts...).Wait(ctx)
}

// Submit starts the flow as a subflow and returns its future at once.
func (f *FlowDef[P, R]) Submit(ctx Context, p P, opts ...CallOption) Future[R] {
	cc := applyCall(opts)
	raw, err := json.Marshal(p)
	if err != nil {
		err = Permanent(fmt.Errorf("encode parameters of subflow %s: %w", f.def.Name, err))
		return Future[R]{f: ctx.flow().Subflow(&engine.FlowDef{Name: f.def.Name, Body: func(*engine.FlowCtx, json.RawMessage) (any, error) {
			return nil, err
		}}, nil, cc.key, decode[R])}
	}
	return Future[R]{f: ctx.flow().Subflow(f.def, raw, cc.key, decode[R])}
}

// RunInfo describes a finished flow run.
type RunInfo struct {
	ID      string
	Flow    string
	State   string // COMPLETED, FAILED, CANCELLED, ...
	Attempt int
}

func runInfo(r store.Run) RunInfo {
	return RunInfo{ID: r.ID, Flow: r.Flow, State: string(r.State), Attempt: r.Attempt}
}

// Execute runs the flow in this process on rt's store and waits until the
// run ends. p is used as given: Defaults apply to the command line only. The error is the flow's error when the run did not complete.
// Cancelling ctx cancels the run (it ends CANCELLED).
func (f *FlowDef[P, R]) Execute(ctx context.Context, rt *Runtime, p P) (R, RunInfo, error) {
	var zero R
	raw, err := json.Marshal(p)
	if err != nil {
		return zero, RunInfo{}, fmt.Errorf("encode parameters of flow %s: %w", f.def.Name, err)
	}
	out, err := rt.eng.Start(ctx, f.def, raw)
	return result[R](out, err)
}

// Retry starts a new attempt of a FAILED, CANCELLED or CRASHED run of this
// flow in this process, reusing its completed steps, and waits until it ends.
func (f *FlowDef[P, R]) Retry(ctx context.Context, rt *Runtime, runID string) (R, RunInfo, error) {
	out, err := rt.eng.Retry(ctx, f.def, runID, engine.RetryOptions{})
	return result[R](out, err)
}

// RetryWith is Retry with new parameters p (used as given, as Execute uses
// them): the new attempt and later ones run with p, every step whose input
// did not change is reused and the others run. The edit (old and new
// values, and the user of this process) is recorded on the run.
func (f *FlowDef[P, R]) RetryWith(ctx context.Context, rt *Runtime, runID string, p P) (R, RunInfo, error) {
	var zero R
	raw, err := json.Marshal(p)
	if err != nil {
		return zero, RunInfo{}, fmt.Errorf("encode parameters of flow %s: %w", f.def.Name, err)
	}
	out, err := rt.eng.Retry(ctx, f.def, runID, engine.RetryOptions{Parameters: raw, By: engine.CurrentUser()})
	return result[R](out, err)
}

func result[R any](out engine.Outcome, err error) (R, RunInfo, error) {
	var zero R
	if err != nil {
		return zero, runInfo(out.Run), err
	}
	if out.Err != nil {
		return zero, runInfo(out.Run), out.Err
	}
	v, _ := out.Result.(R)
	return v, runInfo(out.Run), nil
}
