package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// httpError is an error with its HTTP status and API code.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, api.CodeNotFound, fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) error {
	return &httpError{http.StatusConflict, api.CodeConflict, fmt.Sprintf(format, args...)}
}

type handler func(w http.ResponseWriter, r *http.Request) error

// wrap renders a handler's error: the one place where errors become
// responses.
func (s *Server) wrap(h handler) http.Handler { return s.wrapLimit(h, s.cfg.MaxBodyBytes) }

// wrapLimit is wrap with a bound of limit bytes on the request body.
func (s *Server) wrapLimit(h handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &he):
		case errors.As(err, &mbe):
			he = &httpError{http.StatusRequestEntityTooLarge, api.CodeTooLarge,
				fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit)}
		case errors.Is(err, store.ErrNotFound):
			he = &httpError{http.StatusNotFound, api.CodeNotFound, err.Error()}
		case errors.Is(err, store.ErrConflict):
			he = &httpError{http.StatusConflict, api.CodeConflict, err.Error()}
		case r.Context().Err() != nil:
			return // the client went away
		default:
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, api.CodeInternal, "internal error: " + err.Error()}
		}
		writeJSON(w, he.status, api.Error{Error: api.ErrorBody{Code: he.code, Message: he.msg}})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// decode reads a JSON body strictly: one value, no unknown fields.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errBadRequest("Content-Type must be application/json, got %q", ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return errBadRequest("request body is empty; expected a JSON object")
		case errors.As(err, &se):
			return errBadRequest("malformed JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return errBadRequest("field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return errBadRequest("%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return errBadRequest("invalid JSON body: %v", err)
	}
	if dec.More() {
		return errBadRequest("request body has more than one JSON value")
	}
	return nil
}

// identifier is a user-controlled text that identifies something, named as
// in the request body.
type identifier struct{ field, what, value string }

// checkIdentifiers refuses, with a 400 naming the field, identifiers that
// are not valid UTF-8 or hold a NUL byte (store.CheckIdentifier, the rule
// the engine applies to step keys at the call).
func checkIdentifiers(ids ...identifier) error {
	for _, id := range ids {
		if err := store.CheckIdentifier(id.what, id.value); err != nil {
			return errBadRequest("field %q: %v", id.field, err)
		}
	}
	return nil
}
