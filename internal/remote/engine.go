// Package remote is the worker's side of Baton's worker and engine
// protocols: a Client registers a worker, heartbeats, claims and reports
// work, and its EngineStore is the store of a worker's engine, every read
// and write going through the server's engine protocol instead of a
// database connection. They carry internal/store records, so they are not
// part of the public client (package client).
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/transport"
)

// EngineStore is the store of a worker's engine: every read and write goes
// through the server's engine protocol. It also stores blobs on the server.
type EngineStore struct {
	c *transport.Client
	// FinishedWait is how long TaskRunFinished lets the server wait for a
	// task run to finish. Default 20s.
	FinishedWait time.Duration
	// RetryFor is how long a request that failed transiently (IsTransient:
	// the server unreachable, or answering 502, 503 or 504, such as when its
	// database is down) is sent again, with a backoff from 100ms to 2s,
	// counted from its first failure. Zero sends every request once.
	// Resending is safe: the engine protocol's writes are idempotent.
	// TaskRunFinished is not retried here (its caller polls again).
	RetryFor time.Duration
	// LeaseValid, when set, is asked before each resend: false stops
	// retrying, because the worker's leases are lost and another worker may
	// own its runs now.
	LeaseValid func() bool
	// Clock times the resends (RetryFor and the backoff). Default the
	// system clock; a worker sets its own.
	Clock clock.Clock
}

// retry runs send until it succeeds, fails permanently, or RetryFor or the
// lease is over. resent reports that an earlier try failed in a way that
// leaves unknown whether the server applied it.
func (s *EngineStore) retry(ctx context.Context, send func() error) (resent bool, err error) {
	var first time.Time
	clk := clock.Or(s.Clock)
	backoff := 100 * time.Millisecond
	for {
		err = send()
		if err == nil || !transport.IsTransient(err) || s.RetryFor <= 0 || ctx.Err() != nil {
			return resent, err
		}
		if first.IsZero() {
			first = clk.Now()
		}
		if clk.Since(first)+backoff > s.RetryFor || (s.LeaseValid != nil && !s.LeaseValid()) {
			return resent, err
		}
		resent = true
		if !clock.Sleep(ctx, clk, backoff) {
			return resent, err
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// EngineStore returns the engine store of this client.
func (c *Client) EngineStore() *EngineStore {
	return &EngineStore{c: c.t, FinishedWait: 20 * time.Second}
}

// translate maps API errors back to the store's sentinels; transient
// errors (transport.IsTransient) also wrap store.ErrUnavailable, so that the engine
// can tell an outage from a refusal.
func translate(err error) error {
	var e *transport.Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w", e.Message, store.ErrNotFound)
		case http.StatusConflict:
			return fmt.Errorf("%s: %w", e.Message, store.ErrConflict)
		}
	}
	if transport.IsTransient(err) {
		return transientError{err}
	}
	return err
}

// transientError is an error that may go away on its own: it reads as its
// cause and also matches store.ErrUnavailable.
type transientError struct{ err error }

func (e transientError) Error() string   { return e.err.Error() }
func (e transientError) Unwrap() []error { return []error{e.err, store.ErrUnavailable} }

// BatchWrite writes a batch through the server.
func (s *EngineStore) BatchWrite(ctx context.Context, b store.Batch) error {
	b = store.WireBatch(b) // bytes that are not UTF-8 survive JSON
	_, err := s.retry(ctx, func() error { return s.c.Do(ctx, "POST", apitype.Prefix+"/engine/batch", b, nil) })
	return translate(err)
}

// RunGet reads a run.
func (s *EngineStore) RunGet(ctx context.Context, id string) (store.Run, error) {
	var r store.Run
	_, err := s.retry(ctx, func() error {
		return s.c.Do(ctx, "GET", apitype.Prefix+"/engine/runs/"+url.PathEscape(id), nil, &r)
	})
	return r, translate(err)
}

// RunCreate creates a run.
func (s *EngineStore) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, bool, error) {
	var out api.CreatedRun
	wire := p
	wire.Cause, wire.Message = store.EncodeText(p.Cause), store.EncodeText(p.Message)
	_, err := s.retry(ctx, func() error { return s.c.Do(ctx, "POST", apitype.Prefix+"/engine/runs", wire, &out) })
	return out.Run, out.Created, translate(err)
}

// RunTransition changes a run's state conditionally. When a resent
// transition conflicts because an earlier try was applied (the run is in
// p.To at the attempt it leads to), that is success.
func (s *EngineStore) RunTransition(ctx context.Context, p store.RunTransitionParams) (store.Run, error) {
	var r store.Run
	wire := store.WireTransition(p)
	resent, err := s.retry(ctx, func() error {
		return s.c.Do(ctx, "POST", apitype.Prefix+"/engine/runs/"+url.PathEscape(p.ID)+"/transition", wire, &r)
	})
	err = translate(err)
	if resent && p.Attempt != 0 && errors.Is(err, store.ErrConflict) {
		want := p.Attempt
		if p.NextAttempt {
			want++
		}
		if cur, gerr := s.RunGet(ctx, p.ID); gerr == nil && cur.State == p.To && cur.Attempt == want {
			return cur, nil
		}
	}
	return r, err
}

// RunChildGet returns the subflow run of a step.
func (s *EngineStore) RunChildGet(ctx context.Context, parentRunID, stepKey string) (store.Run, error) {
	var r store.Run
	_, err := s.retry(ctx, func() error {
		return s.c.Do(ctx, "GET", apitype.Prefix+"/engine/runs/"+url.PathEscape(parentRunID)+"/child?key="+url.QueryEscape(stepKey), nil, &r)
	})
	return r, translate(err)
}

// JournalList returns a run's journal.
func (s *EngineStore) JournalList(ctx context.Context, runID string) ([]store.JournalEntry, error) {
	var j []store.JournalEntry
	_, err := s.retry(ctx, func() error {
		return s.c.Do(ctx, "GET", apitype.Prefix+"/engine/runs/"+url.PathEscape(runID)+"/journal", nil, &j)
	})
	return j, translate(err)
}

// CacheGet returns a cache entry.
func (s *EngineStore) CacheGet(ctx context.Context, key string, _ time.Time) (store.CacheEntry, error) {
	var ce store.CacheEntry
	_, err := s.retry(ctx, func() error {
		return s.c.Do(ctx, "GET", apitype.Prefix+"/engine/cache?key="+url.QueryEscape(key), nil, &ce)
	})
	return ce, translate(err)
}

// WaitBegin records a wait step through the server, which validates kept
// input with its own validator.
func (s *EngineStore) WaitBegin(ctx context.Context, p store.WaitBeginParams) (store.TaskRun, error) {
	var tr store.TaskRun
	_, err := s.retry(ctx, func() error {
		return s.c.Do(ctx, "POST", apitype.Prefix+"/engine/waits", p, &tr)
	})
	return tr, translate(err)
}

// SlotAcquire takes the tag-limit slots of a task run that the worker's
// engine executes in-process; see store.SlotAcquireParams.
func (s *EngineStore) SlotAcquire(ctx context.Context, p store.SlotAcquireParams) (bool, error) {
	var out api.SlotAcquired
	_, err := s.retry(ctx, func() error {
		return s.c.Do(ctx, "POST", apitype.Prefix+"/engine/slots", p, &out)
	})
	return out.Acquired, translate(err)
}

// SlotRenew extends the lease of such a task run's slots.
func (s *EngineStore) SlotRenew(ctx context.Context, p store.SlotRenewParams) error {
	_, err := s.retry(ctx, func() error {
		return s.c.Do(ctx, "POST", apitype.Prefix+"/engine/slots/renew", p, nil)
	})
	return translate(err)
}

// TaskRunFinished waits (long poll) for any of refs to finish.
func (s *EngineStore) TaskRunFinished(ctx context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	var out api.FinishedResult
	err := s.c.Do(ctx, "POST", apitype.Prefix+"/engine/finished", api.Finished{Refs: refs, WaitMS: s.FinishedWait.Milliseconds()}, &out)
	return out.TaskRuns, translate(err)
}

// Put stores a blob on the server.
func (s *EngineStore) Put(data []byte) (string, error) {
	var out api.BlobRef
	_, err := s.retry(context.Background(), func() error {
		return s.c.DoRaw(context.Background(), "PUT", apitype.Prefix+"/blobs", "application/octet-stream", data, func(_ int, r io.Reader) error {
			return json.NewDecoder(r).Decode(&out)
		})
	})
	return out.Ref, err
}

// Get reads a blob from the server.
func (s *EngineStore) Get(ref string) ([]byte, error) {
	var buf bytes.Buffer
	_, err := s.retry(context.Background(), func() error {
		buf.Reset()
		return s.c.DoRaw(context.Background(), "GET", apitype.Prefix+"/blobs/"+url.PathEscape(ref), "", nil, func(_ int, r io.Reader) error {
			_, err := io.Copy(&buf, r)
			return err
		})
	})
	return buf.Bytes(), err
}
