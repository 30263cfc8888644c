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
func encJSON(m json.RawMessage) any {
	if m == nil {
		return nil
	}
	return string(m)
}

// decJSON turns a scanned TEXT column into a message: nil for NULL. The
// bytes are copied (scanning into *[]byte already copies).
func decJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return json.RawMessage(b)
}

// encError encodes an ErrorInfo as JSON TEXT, NULL for nil.
func encError(e *store.ErrorInfo) (any, error) {
	if e == nil {
		return nil, nil
	}
	b, err := json.Marshal(e)
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
	return &e, nil
}

func encHistory(h []store.Transition) (any, error) {
	if len(h) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(h)
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
	return h, nil
}
