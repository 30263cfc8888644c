// Package pub breaks the rule in every way the check knows, and keeps it
// where the check must stay quiet.
package pub

import "example.com/apicheck/internal/in"

// Alias is an internal type under a public name.
type Alias = in.T

// Opt is a function type that takes an internal type.
type Opt func(*in.T) error

// Field has an exported field of an internal type.
type Field struct {
	X      *in.T
	hidden in.T // unexported: fine
}

// Embeds embeds an internal type: its fields are promoted.
type Embeds struct {
	in.T
}

// Iface has a method that returns an internal type.
type Iface interface {
	M() in.T
	m(in.T) // unexported: fine
}

// Value has an exported method that takes an internal type.
type Value struct{}

// M takes an internal type.
func (Value) M(in.T) {}

func (Value) m(in.T) {} // unexported: fine

// Box is generic.
type Box[X any] struct{ V X }

// Generic instantiates Box with an internal type.
var Generic Box[in.T]

// Var is of an internal type.
var Var in.T

// Func takes an internal type deep inside.
func Func(map[string][]in.T) {}

type hidden struct{ Exposed in.T }

// Leak returns an unexported type whose exported field users can read.
func Leak() hidden { return hidden{} }

// Fine mentions no internal type.
func Fine(Box[int], Field) error { return nil }

func private(in.T) {} // unexported: fine
