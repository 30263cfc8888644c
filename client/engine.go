package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// EngineStore is the store of a worker's engine: every read and write goes
// through the server's engine protocol. It also stores blobs on the server.
type EngineStore struct {
	c *Client
	// FinishedWait is how long TaskRunFinished lets the server wait for a
	// task run to finish. Default 20s.
	FinishedWait time.Duration
}

// EngineStore returns the engine store of this client.
func (c *Client) EngineStore() *EngineStore {
	return &EngineStore{c: c, FinishedWait: 20 * time.Second}
}

// translate maps API errors back to the store's sentinels.
func translate(err error) error {
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w", e.Message, store.ErrNotFound)
		case http.StatusConflict:
			return fmt.Errorf("%s: %w", e.Message, store.ErrConflict)
		}
	}
	return err
}

// BatchWrite writes a batch through the server.
func (s *EngineStore) BatchWrite(ctx context.Context, b store.Batch) error {
	return translate(s.c.do(ctx, "POST", api.Prefix+"/engine/batch", b, nil))
}

// RunGet reads a run.
func (s *EngineStore) RunGet(ctx context.Context, id string) (store.Run, error) {
	var r store.Run
	err := s.c.do(ctx, "GET", api.Prefix+"/engine/runs/"+url.PathEscape(id), nil, &r)
	return r, translate(err)
}

// RunCreate creates a run.
func (s *EngineStore) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, bool, error) {
	var out api.CreatedRun
	err := s.c.do(ctx, "POST", api.Prefix+"/engine/runs", p, &out)
	return out.Run, out.Created, translate(err)
}

// RunTransition changes a run's state conditionally.
func (s *EngineStore) RunTransition(ctx context.Context, p store.RunTransitionParams) (store.Run, error) {
	var r store.Run
	err := s.c.do(ctx, "POST", api.Prefix+"/engine/runs/"+url.PathEscape(p.ID)+"/transition", p, &r)
	return r, translate(err)
}

// RunChildGet returns the subflow run of a step.
func (s *EngineStore) RunChildGet(ctx context.Context, parentRunID, stepKey string) (store.Run, error) {
	var r store.Run
	err := s.c.do(ctx, "GET", api.Prefix+"/engine/runs/"+url.PathEscape(parentRunID)+"/child?key="+url.QueryEscape(stepKey), nil, &r)
	return r, translate(err)
}

// JournalList returns a run's journal.
func (s *EngineStore) JournalList(ctx context.Context, runID string) ([]store.JournalEntry, error) {
	var j []store.JournalEntry
	err := s.c.do(ctx, "GET", api.Prefix+"/engine/runs/"+url.PathEscape(runID)+"/journal", nil, &j)
	return j, translate(err)
}

// CacheGet returns a cache entry.
func (s *EngineStore) CacheGet(ctx context.Context, key string, _ time.Time) (store.CacheEntry, error) {
	var ce store.CacheEntry
	err := s.c.do(ctx, "GET", api.Prefix+"/engine/cache?key="+url.QueryEscape(key), nil, &ce)
	return ce, translate(err)
}

// TaskRunFinished waits (long poll) for any of refs to finish.
func (s *EngineStore) TaskRunFinished(ctx context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	var out api.FinishedResult
	err := s.c.do(ctx, "POST", api.Prefix+"/engine/finished", api.Finished{Refs: refs, WaitMS: s.FinishedWait.Milliseconds()}, &out)
	return out.TaskRuns, translate(err)
}

// Put stores a blob on the server.
func (s *EngineStore) Put(data []byte) (string, error) {
	var out api.BlobRef
	err := s.c.doRaw(context.Background(), "PUT", api.Prefix+"/blobs", "application/octet-stream", data, func(_ int, r io.Reader) error {
		return jsonDecode(r, &out)
	})
	return out.Ref, err
}

// Get reads a blob from the server.
func (s *EngineStore) Get(ref string) ([]byte, error) {
	var buf bytes.Buffer
	err := s.c.doRaw(context.Background(), "GET", api.Prefix+"/blobs/"+url.PathEscape(ref), "", nil, func(_ int, r io.Reader) error {
		_, err := io.Copy(&buf, r)
		return err
	})
	return buf.Bytes(), err
}
