package api

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIdentifierBytes bounds identifiers users choose (flow names, queue
// names, idempotency keys, run ids).
const MaxIdentifierBytes = 1024

// CheckIdentifier checks text a user chose to name or find something (a
// flow, a queue, an idempotency key, a run id): valid UTF-8 without NUL
// bytes, at most MaxIdentifierBytes. PostgreSQL cannot store NUL or invalid
// UTF-8 in text, so every store refuses them at the edge, the same way.
// field names the input in the message ("field \"flow\"", "query parameter
// \"queue\"").
func CheckIdentifier(field, s string) error {
	switch {
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8: %q", field, s)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s must not contain a NUL byte: %q", field, s)
	case len(s) > MaxIdentifierBytes:
		return fmt.Errorf("%s is %d bytes long; at most %d are allowed", field, len(s), MaxIdentifierBytes)
	}
	return nil
}
