package sqlite

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// encTime encodes t as unix nanoseconds, 0 for the zero time.
func encTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// decTime decodes unix nanoseconds into a UTC time, the zero time for 0.
func decTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// encJSON encodes a JSON value as TEXT, NULL (nil) for a nil message.
// Raw bytes that are not UTF-8 are escaped (store.EncodeText), as in every
// backend.
func encJSON(m json.RawMessage) any {
	if m == nil {
		return nil
	}
	return store.EncodeText(string(m))
}

// decJSON turns a scanned TEXT column into a message: nil for NULL. The
// bytes are copied (scanning into *[]byte already copies).
func decJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	if store.NeedsDecode(b) {
		return json.RawMessage(store.DecodeText(string(b)))
	}
	return json.RawMessage(b)
}

// encResult encodes a result column: NULL when the result is in the blob
// store (ref set), so that no record holds an inline value beside a ref.
func encResult(m json.RawMessage, ref string) any { return encJSON(store.InlineResult(m, ref)) }

// encText encodes free text (messages, causes) for a TEXT column; see
// store.EncodeText.
func encText(s string) string { return store.EncodeText(s) }

// decText decodes a free-text column read back.
func decText(s string) string { return store.DecodeText(s) }

// encError encodes an ErrorInfo as JSON TEXT, NULL for nil.
func encError(e *store.ErrorInfo) (any, error) {
	if e == nil {
		return nil, nil
	}
	b, err := json.Marshal(store.EncodeErrorInfo(e))
	if err != nil {
		return nil, fmt.Errorf("encode error info: %w", err)
	}
	return string(b), nil
}

// decError decodes an ErrorInfo column, nil for NULL.
func decError(b []byte) (*store.ErrorInfo, error) {
	if b == nil {
		return nil, nil
	}
	var e store.ErrorInfo
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode error info: %w", err)
	}
	return store.DecodeErrorInfo(&e), nil
}

func encHistory(h []store.Transition) (any, error) {
	if len(h) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(store.EncodeTransitions(h))
	if err != nil {
		return nil, fmt.Errorf("encode history: %w", err)
	}
	return b, nil
}

func decHistory(b []byte) ([]store.Transition, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var h []store.Transition
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode task-run history: %w", err)
	}
	return store.DecodeTransitions(h), nil
}

// encAttempts encodes a run's attempt records as JSON TEXT, NULL for none.
func encAttempts(a []store.AttemptInfo) (any, error) {
	if len(a) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode attempts: %w", err)
	}
	return store.EncodeText(string(b)), nil
}

// decAttempts decodes a run's attempts column, nil for NULL.
func decAttempts(b []byte) ([]store.AttemptInfo, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var a []store.AttemptInfo
	if err := json.Unmarshal(decJSON(b), &a); err != nil {
		return nil, fmt.Errorf("decode attempts: %w", err)
	}
	return a, nil
}
