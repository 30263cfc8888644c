package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/batonhq/baton/apitype"
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
	return &httpError{http.StatusBadRequest, apitype.CodeBadRequest, fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, apitype.CodeNotFound, fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) error {
	return &httpError{http.StatusConflict, apitype.CodeConflict, fmt.Sprintf(format, args...)}
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
			he = &httpError{http.StatusRequestEntityTooLarge, apitype.CodeTooLarge,
				fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit)}
		case errors.Is(err, store.ErrNotFound):
			he = &httpError{http.StatusNotFound, apitype.CodeNotFound, err.Error()}
		case errors.Is(err, store.ErrConflict):
			he = &httpError{http.StatusConflict, apitype.CodeConflict, err.Error()}
		case r.Context().Err() != nil:
			return // the client went away
		case errors.Is(err, store.ErrUnavailable):
			// Transient: clients (workers) send the request again.
			s.log.Warn("database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
			w.Header().Set("Retry-After", "1")
			he = &httpError{http.StatusServiceUnavailable, apitype.CodeUnavailable, "database unavailable, try again: " + err.Error()}
		default:
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, apitype.CodeInternal, "internal error: " + err.Error()}
		}
		writeJSON(w, he.status, apitype.ErrorResponse{Error: apitype.ErrorBody{Code: he.code, Message: he.msg}})
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
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if !utf8.Valid(data) {
		// encoding/json would quietly turn the bad bytes into U+FFFD, so
		// that two different idempotency keys became the same one.
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return errBadRequest("request body is not valid UTF-8 (byte %d); JSON text must be UTF-8", off)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
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

// checkContentType accepts a JSON body's Content-Type: none, or
// application/json with at most a UTF-8 charset.
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	bad := func(why string) error {
		return &httpError{http.StatusUnsupportedMediaType, apitype.CodeUnsupportedMedia,
			fmt.Sprintf("Content-Type %q is not accepted: %s; send application/json", ct, why)}
	}
	mt, ps, err := mime.ParseMediaType(ct)
	if err != nil {
		return bad(err.Error())
	}
	if mt != "application/json" {
		return bad("the body must be JSON")
	}
	for k, v := range ps {
		if k != "charset" {
			return bad(fmt.Sprintf("unknown parameter %q", k))
		}
		if !strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") {
			return bad("JSON is UTF-8")
		}
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

// checkQuery refuses query parameters a route does not take, so that a
// misspelt filter (?stat=FAILED) is an error rather than ignored.
func checkQuery(rt route, r *http.Request) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errBadRequest("malformed query string %q: %v", r.URL.RawQuery, err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(rt.query, k) {
			if len(rt.query) == 0 {
				return errBadRequest("unknown query parameter %q: %s %s takes none", k, rt.method, rt.pattern)
			}
			return errBadRequest("unknown query parameter %q; %s %s takes: %s", k, rt.method, rt.pattern, strings.Join(rt.query, ", "))
		}
		if len(q[k]) > 1 {
			return errBadRequest("query parameter %q is given %d times; give it once", k, len(q[k]))
		}
	}
	return nil
}

// noRoute answers a request no route matched: 405 with Allow when the
// path exists for other methods, else 404, both in the JSON error shape.
func (s *Server) noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, rt := range s.routes {
		if slices.Contains(allow, rt.method) {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = rt.method
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, rt.method)
		}
	}
	if len(allow) > 0 {
		if slices.Contains(allow, "GET") {
			allow = append(allow, "HEAD")
		}
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return &httpError{http.StatusMethodNotAllowed, apitype.CodeMethod,
			fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", "))}
	}
	return errNotFound("no route %s %s; the API is described at %s/openapi.json", r.Method, r.URL.Path, apitype.Prefix)
}
