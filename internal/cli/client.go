package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/transport"
)

// Client returns a client for --server or BATON_SERVER; a malformed URL is
// a UsageError.
func Client(env *Env) (*client.Client, error) {
	c, err := client.New(env.ServerURL())
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("--server: %w", err)}
	}
	as := env.As
	if as == "" {
		as = engine.CurrentUser()
	}
	if err := store.CheckIdentifier("--as", as); err != nil {
		return nil, &UsageError{Err: err}
	}
	c.SetActor(as)
	return c, nil
}

// RequireClient is Client for commands that only work through a server:
// without one it is a UsageError saying how to start one.
func RequireClient(cmd string, env *Env) (*client.Client, error) {
	if env.ServerURL() == "" {
		return nil, &UsageError{Err: &Hint{Format: "%s needs a Baton server: pass --server URL (or set BATON_SERVER), " +
			"or start a local one with: %s dev", Args: []any{cmd}, Tool: true}}
	}
	return Client(env)
}

// UnknownRun is the error for a run id that does not exist.
func UnknownRun(id string) error {
	return &UsageError{Err: &Hint{Format: "unknown run id %q; list runs with: %s runs list", Args: []any{id}}}
}

// APIError maps an error of the API to the command's: an unknown run (404)
// when id is set, bad input (400) and a refused change (409) are
// UsageErrors carrying the server's message; an unreachable server says how
// to start one. err is of the public client or of the worker's
// (internal/remote).
func APIError(err error, id string) error {
	var ce *client.Error
	var te *transport.Error
	var status int
	var code, msg string
	switch {
	case errors.As(err, &ce):
		status, code, msg = ce.Status, ce.Code, ce.Message
	case errors.As(err, &te):
		status, code, msg = te.Status, te.Code, te.Message
	case strings.Contains(err.Error(), "server unreachable"):
		return &Hint{Format: "%v (is the server running? start one with: %s server, or %[2]s dev)",
			Args: []any{err, HintCommand}, Tool: true, Err: err}
	default:
		return err
	}
	switch status {
	case http.StatusNotFound:
		if id != "" && code == apitype.CodeNotFound {
			return UnknownRun(id)
		}
		return &UsageError{Err: errors.New(msg)}
	case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge,
		http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		return &UsageError{Err: errors.New(msg)}
	}
	return fmt.Errorf("server: %w", err)
}
