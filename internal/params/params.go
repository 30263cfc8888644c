// Package params turns what a user types on the command line into the
// parameter value of a flow, and describes that value's shape.
//
// A flow is a Go function func(ctx baton.Context, p P) (R, error). Schema
// derives a JSON Schema for P from its Go type, and Build assembles P's JSON
// from the flow's defaults, a --params JSON document and --param key=value
// pairs, checking the result against P and returning it normalized, exactly
// as encoding/json encodes P.
//
// Struct fields of P are described with two extra tags next to `json`:
//
//	type Params struct {
//		Region string `json:"region" baton:"required" doc:"cloud region to deploy to"`
//		Count  int    `json:"count,omitempty" doc:"number of replicas"`
//	}
//
// and with the tags of github.com/invopop/jsonschema, whose keywords the
// schema takes (and the validation checks, listing every violation):
//
//	Batch int `json:"batch" jsonschema:"minimum=1,maximum=10,description=experiments per iteration"`
package params

import "strings"

// Error is the type of every error Build returns. All of them are problems
// with the parameters the user supplied (or with the flow's defaults), so a
// CLI can report Error() as is and exit with a usage status.
type Error struct {
	// Param is the dotted path of the parameter concerned ("region",
	// "db.port", "hosts[2]"), or "" when the problem is not tied to one.
	Param string
	// Msg is the complete human-readable message returned by Error.
	Msg string
	// Err is the underlying error, if any (for example a *json.SyntaxError).
	Err error
}

// Error returns the message, which already names the offending flag or
// parameter.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

func errorf(param string, err error, msg string) *Error {
	return &Error{Param: param, Msg: msg, Err: err}
}

// quoteList formats sorted names for "known parameters: a, b, c".
func quoteList(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
