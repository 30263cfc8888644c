// Package transport sends requests to Baton's HTTP API for the public Go
// client (package client) and the worker's side of the worker and engine
// protocols (internal/remote): JSON bodies, error responses decoded into
// Error, and failover between several servers sharing one database.
package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/batonhq/baton/apitype"
)

// Error is an error response of the API: its HTTP status and the code and
// message of its body (apitype.ErrorBody).
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// ErrUnreachable is wrapped by the errors of requests that reached no
// server, or whose connection broke before the answer was read: whether the
// server applied such a request is unknown.
var ErrUnreachable = errors.New("baton server unreachable")

// IsTransient reports whether err may go away if the request is sent again
// later: no server could be reached (ErrUnreachable), or one answered 502,
// 503 (such as its database being unavailable) or 504. Other API errors
// (400, 404, 409, 413, 500) are permanent: the same request will fail again.
func IsTransient(err error) bool {
	if errors.Is(err, ErrUnreachable) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// IsConflict reports whether err is a 409 from the API.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// IsNotFound reports whether err is a 404 from the API.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Client sends requests to one or more Baton servers: to the current one,
// moving on to the next when one cannot be reached. It is safe for
// concurrent use.
type Client struct {
	bases  []string
	next   atomic.Int64
	hc     *http.Client
	header http.Header // sent with every request; set before use
}

// SetHeader sends the header key with value v in every request (an empty v
// sends none). It must be called before the client is used.
func (c *Client) SetHeader(key, v string) {
	if c.header == nil {
		c.header = http.Header{}
	}
	if v == "" {
		c.header.Del(key)
		return
	}
	c.header.Set(key, v)
}

// New returns a client for the servers at the given base URLs (such as
// http://127.0.0.1:8420); a single argument may hold several URLs separated
// by commas.
func New(urls ...string) (*Client, error) {
	var bases []string
	for _, u := range urls {
		for _, part := range strings.Split(u, ",") {
			part = strings.TrimRight(strings.TrimSpace(part), "/")
			if part == "" {
				continue
			}
			pu, err := url.Parse(part)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return nil, fmt.Errorf("invalid server URL %q: expected http://HOST:PORT", part)
			}
			bases = append(bases, part)
		}
	}
	if len(bases) == 0 {
		return nil, errors.New("no server URL given")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{bases: bases, hc: &http.Client{Transport: tr}}, nil
}

// Do sends a request with a JSON body (nil for none) and decodes a JSON
// response into out (nil to discard). A request that cannot reach a server
// is tried on the next one.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.call(ctx, method, path, body, out, true)
}

// DoOnce is Do sent to the current server only: a request that fails in
// transit is not sent again to the next server (the next request goes
// there), because the first server may have applied it: claims must not be
// lost.
func (c *Client) DoOnce(ctx context.Context, method, path string, body, out any) error {
	return c.call(ctx, method, path, body, out, false)
}

func (c *Client) call(ctx context.Context, method, path string, body, out any, retry bool) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	read := func(_ int, r io.Reader) error {
		if out == nil {
			_, err := io.Copy(io.Discard, r)
			return err
		}
		return json.NewDecoder(r).Decode(out)
	}
	if !retry {
		return c.send(ctx, method, path, "application/json", payload, read, 1)
	}
	return c.DoRaw(ctx, method, path, "application/json", payload, read)
}

// DoRaw sends payload (nil for no body) with Content-Type ctype and gives
// the status and body of a successful response to read; failover is as for
// Do.
func (c *Client) DoRaw(ctx context.Context, method, path, ctype string, payload []byte, read func(status int, r io.Reader) error) error {
	return c.send(ctx, method, path, ctype, payload, read, len(c.bases))
}

// send tries up to tries servers, moving on when one cannot be reached.
func (c *Client) send(ctx context.Context, method, path, ctype string, payload []byte, read func(status int, r io.Reader) error, tries int) error {
	var lastErr error
	for try := range tries {
		i := int(c.next.Load()) % len(c.bases)
		req, err := http.NewRequestWithContext(ctx, method, c.bases[i]+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		for k, vs := range c.header {
			req.Header[k] = vs
		}
		if payload != nil {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = err
			c.next.CompareAndSwap(int64(i), int64(i+1)) // fail over
			if try < tries-1 {
				continue
			}
			return fmt.Errorf("%w: %w", ErrUnreachable, lastErr)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 400 {
			var e apitype.ErrorResponse
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
				e.Error = apitype.ErrorBody{Code: "http", Message: strings.TrimSpace(string(b))}
			}
			if resp.StatusCode == http.StatusServiceUnavailable && try < tries-1 {
				c.next.CompareAndSwap(int64(i), int64(i+1))
				continue
			}
			return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		if err := read(resp.StatusCode, resp.Body); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
				// The connection broke while the answer was read.
				return fmt.Errorf("%w: reading the answer: %w", ErrUnreachable, err)
			}
			return err
		}
		return nil
	}
	return lastErr
}
