package sqlcore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// The stored forms of values, the same in every dialect: times are integer
// unix nanoseconds (0 for the zero time), read back in UTC; JSON values and
// free text are TEXT escaped by store.EncodeText (NULL for a nil
// json.RawMessage); ErrorInfo and task-run histories are their JSON. The
// encoders of nullable columns return nil or a string, which both drivers
// bind without reflection; dialects that bind arrays convert them.

// EncTime encodes t as unix nanoseconds, 0 for the zero time.
func EncTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// DecTime decodes unix nanoseconds into a UTC time, the zero time for 0.
func DecTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// NowIfZero returns t, or the current time when t is zero.
func NowIfZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// RoundTime returns t as it reads back from the database: UTC, without a
// monotonic clock reading, the zero time for the zero time.
func RoundTime(t time.Time) time.Time { return DecTime(EncTime(t)) }

// RoundRun returns r as it reads back from the database.
func RoundRun(r store.Run) store.Run {
	r.CreatedAt, r.UpdatedAt = RoundTime(r.CreatedAt), RoundTime(r.UpdatedAt)
	r.StartedAt, r.EndedAt = RoundTime(r.StartedAt), RoundTime(r.EndedAt)
	r.LeaseUntil = RoundTime(r.LeaseUntil)
	r.ScheduledAt = RoundTime(r.ScheduledAt)
	return r
}

// RoundTaskRun returns t as it reads back from the database.
func RoundTaskRun(t store.TaskRun) store.TaskRun {
	t.CreatedAt, t.StartedAt, t.EndedAt = RoundTime(t.CreatedAt), RoundTime(t.StartedAt), RoundTime(t.EndedAt)
	t.LeaseUntil = RoundTime(t.LeaseUntil)
	if len(t.History) > 0 {
		h := make([]store.Transition, len(t.History))
		for i, x := range t.History {
			x.At = x.At.UTC().Round(0) // JSON keeps nanoseconds
			h[i] = x
		}
		t.History = h
	}
	return t
}

// EncJSON encodes a JSON value for a TEXT column: nil (NULL) for a nil
// message, otherwise its text escaped by store.EncodeText (raw bytes that
// are not UTF-8, which PostgreSQL's TEXT refuses).
func EncJSON(m json.RawMessage) any {
	if m == nil {
		return nil
	}
	return store.EncodeText(string(m))
}

// EncResult encodes a result column: NULL when the result is in the blob
// store (ref set), so that no record holds an inline value beside a ref.
func EncResult(m json.RawMessage, ref string) any { return EncJSON(store.InlineResult(m, ref)) }

// DecJSON turns a scanned TEXT column into a message: nil for NULL,
// non-nil (possibly empty) otherwise. Both drivers scan into a fresh slice,
// which it keeps unless the text holds escapes.
func DecJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	if store.NeedsDecode(b) {
		return json.RawMessage(store.DecodeText(string(b)))
	}
	return json.RawMessage(b)
}

// marshalError returns the stored JSON of e, nil for nil.
func marshalError(e *store.ErrorInfo) ([]byte, error) {
	if e == nil {
		return nil, nil
	}
	b, err := json.Marshal(store.EncodeErrorInfo(e))
	if err != nil {
		return nil, fmt.Errorf("encode error info: %w", err)
	}
	return b, nil
}

// EncError encodes an ErrorInfo for a TEXT column, nil (NULL) for nil.
func EncError(e *store.ErrorInfo) (any, error) {
	b, err := marshalError(e)
	if b == nil {
		return nil, err
	}
	return string(b), nil
}

// DecError decodes an ErrorInfo column, nil for NULL.
func DecError(b []byte) (*store.ErrorInfo, error) {
	if b == nil {
		return nil, nil
	}
	var e store.ErrorInfo
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode error info: %w", err)
	}
	return store.DecodeErrorInfo(&e), nil
}

// MarshalHistory returns the stored JSON array of a task run's
// transitions, nil when there are none. It is json.Marshal output ("[...]"
// without spaces around), which dialects may splice in SQL to append
// transitions.
func MarshalHistory(h []store.Transition) ([]byte, error) {
	if len(h) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(store.EncodeTransitions(h))
	if err != nil {
		return nil, fmt.Errorf("encode history: %w", err)
	}
	return b, nil
}

// DecHistory decodes a history column, nil for NULL, empty text or an
// empty array.
func DecHistory(b []byte) ([]store.Transition, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var h []store.Transition
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode task-run history: %w", err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	return store.DecodeTransitions(h), nil
}

// EncAttempts encodes a run's attempt records as JSON TEXT, nil (NULL)
// for none.
func EncAttempts(a []store.AttemptInfo) (any, error) {
	if len(a) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode attempts: %w", err)
	}
	return store.EncodeText(string(b)), nil
}

// DecAttempts decodes a run's attempts column, nil for NULL.
func DecAttempts(b []byte) ([]store.AttemptInfo, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var a []store.AttemptInfo
	if err := json.Unmarshal(DecJSON(b), &a); err != nil {
		return nil, fmt.Errorf("decode attempts: %w", err)
	}
	return a, nil
}

// encList encodes a list column of workers as JSON, nil (NULL) when
// empty.
func encList(v any, empty bool) (any, error) {
	if empty {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// jsonStrings returns the JSON array of ss, for a parameter that
// Syntax.JSONStrings reads.
func jsonStrings(ss []string) string {
	b, err := json.Marshal(ss)
	if err != nil {
		panic(err) // a []string always marshals
	}
	return string(b)
}

// JSONStrings returns the JSON array of ss, the argument of a list
// parameter that a dialect reads with its JSON functions.
func JSONStrings(ss []string) any { return jsonStrings(ss) }
