// Package sdkdef hands Baton's own packages the engine definition behind a
// flow of the SDK (package baton), whose typed values keep it unexported so
// that the public API mentions no internal type. Package baton sets Flow at
// initialisation; package batontest reads it.
package sdkdef

import "github.com/batonhq/baton/internal/engine"

// Flow returns the engine definition of flow, a *baton.FlowDef, or false
// when flow is not one. Set by package baton.
var Flow func(flow any) (*engine.FlowDef, bool)
