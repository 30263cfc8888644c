package engine

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/batonhq/baton/internal/store"
)

type taskCtxKey struct{}

type taskInfo struct {
	fc      *FlowCtx
	trID    string
	key     string
	attempt int
}

// TaskInfo describes the task run a task's context belongs to.
type TaskInfo struct {
	RunID     string
	TaskRunID string
	Key       string
	Attempt   int
}

// TaskInfoFrom returns the task run that ctx belongs to, or false when ctx
// is not a task's context.
func TaskInfoFrom(ctx context.Context) (TaskInfo, bool) {
	ti, ok := ctx.Value(taskCtxKey{}).(*taskInfo)
	if !ok {
		return TaskInfo{}, false
	}
	return TaskInfo{RunID: ti.fc.runID, TaskRunID: ti.trID, Key: ti.key, Attempt: ti.attempt}, true
}

// TaskLogger returns the logger of the task run that ctx belongs to, or
// false when ctx is not a task's context.
func TaskLogger(ctx context.Context) (*slog.Logger, bool) {
	ti, ok := ctx.Value(taskCtxKey{}).(*taskInfo)
	if !ok {
		return nil, false
	}
	return ti.fc.e.newLogger(ti.fc.runID, ti.trID, ti.key, nil), true
}

// newLogger returns a logger whose records are stored against the run (and
// task run, when trID is set) and printed to the engine's LogOutput.
// When replaying is set and reports true, records are dropped: a flow's own
// log lines are not repeated while a retried attempt replays its journal.
func (e *Engine) newLogger(runID, trID, key string, replaying func() bool) *slog.Logger {
	text := slog.NewTextHandler(e.cfg.LogOutput, &slog.HandlerOptions{Level: slog.LevelDebug})
	short := runID
	if len(short) > 8 {
		short = short[len(short)-8:]
	}
	attrs := []slog.Attr{slog.String("run", short)}
	if key != "" {
		attrs = append(attrs, slog.String("step", key))
	}
	return slog.New(&logHandler{e: e, runID: runID, trID: trID, key: key, replaying: replaying, text: text.WithAttrs(attrs)})
}

type logHandler struct {
	e         *Engine
	replaying func() bool
	runID     string
	trID      string
	key       string
	attrs     []slog.Attr
	group     string
	text      slog.Handler
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelDebug && (h.replaying == nil || !h.replaying())
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := map[string]any{}
	for _, a := range h.attrs {
		addAttr(fields, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(fields, h.group, a)
		return true
	})
	var attrs json.RawMessage
	if len(fields) > 0 {
		attrs, _ = json.Marshal(fields)
	}
	// The engine's clock, not the time slog read, so that records agree
	// with the rest of the run's (a test's fake clock included).
	at := h.e.now()
	r.Time = at
	h.e.w.add(write{logs: []store.LogRecord{{
		RunID: h.runID, TaskRunID: h.trID, TaskKey: h.key, Level: r.Level.String(), Message: r.Message, Attrs: attrs, At: at,
	}}}, nil)
	return h.text.Handle(ctx, r)
}

func addAttr(m map[string]any, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	name := a.Key
	if prefix != "" {
		name = prefix + "." + name
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			addAttr(m, name, g)
		}
		return
	}
	v := a.Value.Any()
	if err, ok := v.(error); ok {
		v = err.Error()
	}
	m[name] = v
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if h.group != "" {
			a.Key = h.group + "." + a.Key
		}
		c.attrs = append(c.attrs, a)
	}
	c.text = h.text.WithAttrs(attrs)
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	if h.group != "" {
		name = h.group + "." + name
	}
	c.group = name
	c.text = h.text.WithGroup(name)
	return &c
}
