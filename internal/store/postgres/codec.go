package postgres

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
// Raw bytes that are not UTF-8 (which PostgreSQL's TEXT refuses) are
// escaped (store.EncodeText), as in every backend.
func encJSON(m json.RawMessage) *string {
	if m == nil {
		return nil
	}
	s := store.EncodeText(string(m))
	return &s
}

// decJSON turns a scanned TEXT column into a message: nil for NULL, non-nil
// (possibly empty) otherwise.
func decJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(store.DecodeText(*s))
}

// encResult encodes a result column: NULL when the result is in the blob
// store (ref set), so that no record holds an inline value beside a ref.
func encResult(m json.RawMessage, ref string) *string { return encJSON(store.InlineResult(m, ref)) }

// encText encodes free text (messages, causes) for a TEXT column, which
// refuses NUL bytes and invalid UTF-8; see store.EncodeText.
func encText(s string) string { return store.EncodeText(s) }

// decText decodes a free-text column read back.
func decText(s string) string { return store.DecodeText(s) }

// encError encodes an ErrorInfo as JSON TEXT, NULL for nil.
func encError(e *store.ErrorInfo) (*string, error) {
	if e == nil {
		return nil, nil
	}
	b, err := json.Marshal(store.EncodeErrorInfo(e))
	if err != nil {
		return nil, fmt.Errorf("encode error info: %w", err)
	}
	s := string(b)
	return &s, nil
}

// decError decodes an ErrorInfo column, nil for NULL.
func decError(s *string) (*store.ErrorInfo, error) {
	if s == nil {
		return nil, nil
	}
	var e store.ErrorInfo
	if err := json.Unmarshal([]byte(*s), &e); err != nil {
		return nil, fmt.Errorf("decode error info: %w", err)
	}
	return store.DecodeErrorInfo(&e), nil
}

// encHistory encodes a task run's transitions as a JSON array, NULL when
// there are none.
func encHistory(h []store.Transition) (*string, error) {
	if len(h) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(store.EncodeTransitions(h))
	if err != nil {
		return nil, fmt.Errorf("encode history: %w", err)
	}
	s := string(b)
	return &s, nil
}

func decHistory(s *string) ([]store.Transition, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	var h []store.Transition
	if err := json.Unmarshal([]byte(*s), &h); err != nil {
		return nil, fmt.Errorf("decode task-run history: %w", err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	return store.DecodeTransitions(h), nil
}

// historyAppend returns an SQL expression of the history column col with the
// transitions of the JSON array parameter param (text) appended. Histories
// are json.Marshal output ("[...]" without spaces around), so appending is a
// splice of the two arrays' texts.
func historyAppend(col, param string) string {
	return fmt.Sprintf(`CASE WHEN %[2]s IS NULL OR %[2]s = '[]' THEN %[1]s
		WHEN %[1]s IS NULL OR %[1]s = '' OR %[1]s = '[]' THEN %[2]s
		ELSE left(%[1]s, -1) || ',' || substr(%[2]s, 2) END`, col, param)
}
