package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Free text that code produces (log messages and attributes, error
// messages, event messages and causes) may hold any bytes: a NUL, or bytes
// that are not UTF-8. PostgreSQL's TEXT refuses both, so every backend
// stores such text through EncodeText and reads it through DecodeText: the
// database holds the same valid UTF-8 text in both stores, and the original
// bytes read back exactly.
//
// The escape character is DLE (U+0010, "data link escape"), which text
// almost never contains: a NUL, a DLE or a byte that is not part of valid
// UTF-8 is written as DLE followed by the byte in two lower-case hex digits.
// Text without those bytes is stored unchanged.
const textEscape = 0x10

// EncodeText returns s in its stored form (see above); it is the identity
// for valid UTF-8 without NUL and DLE.
func EncodeText(s string) string {
	if plainText(s) {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0 || c == textEscape {
			b.WriteByte(textEscape)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			b.WriteByte(textEscape)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

// plainText reports whether s is valid UTF-8 without NUL and DLE.
func plainText(s string) bool {
	return strings.IndexByte(s, 0) < 0 && strings.IndexByte(s, textEscape) < 0 && utf8.ValidString(s)
}

// DecodeText reverses EncodeText. Text that EncodeText did not produce
// (written before this encoding existed) reads back unchanged unless it
// holds a DLE followed by two hex digits.
func DecodeText(s string) string {
	i := strings.IndexByte(s, textEscape)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		if i+2 < len(s) {
			if hi, lo := unhex(s[i+1]), unhex(s[i+2]); hi >= 0 && lo >= 0 {
				b.WriteByte(byte(hi<<4 | lo))
				s = s[i+3:]
				i = strings.IndexByte(s, textEscape)
				continue
			}
		}
		b.WriteByte(s[i])
		s = s[i+1:]
		i = strings.IndexByte(s, textEscape)
	}
	b.WriteString(s)
	return b.String()
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}

// NeedsDecode reports whether stored text b may hold escapes, so that
// readers of large JSON columns can skip DecodeText (and its copy).
func NeedsDecode(b []byte) bool { return bytes.IndexByte(b, textEscape) >= 0 }

// EncodeErrorInfo returns e with its text fields encoded by EncodeText, for
// storage as JSON (encoding/json would replace bytes that are not UTF-8).
func EncodeErrorInfo(e *ErrorInfo) *ErrorInfo {
	if e == nil {
		return nil
	}
	return mapErrorInfo(e, EncodeText)
}

// DecodeErrorInfo reverses EncodeErrorInfo, in place.
func DecodeErrorInfo(e *ErrorInfo) *ErrorInfo {
	if e == nil {
		return nil
	}
	return mapErrorInfo(e, DecodeText)
}

func mapErrorInfo(e *ErrorInfo, f func(string) string) *ErrorInfo {
	c := *e
	c.Message, c.Type, c.Kind = f(e.Message), f(e.Type), f(e.Kind)
	if e.Chain != nil {
		c.Chain = make([]string, len(e.Chain))
		for i, s := range e.Chain {
			c.Chain[i] = f(s)
		}
	}
	return &c
}

// EncodeTransitions returns h with its messages and causes encoded by
// EncodeText, for storage as JSON.
func EncodeTransitions(h []Transition) []Transition { return mapTransitions(h, EncodeText) }

// DecodeTransitions reverses EncodeTransitions, in place.
func DecodeTransitions(h []Transition) []Transition {
	for i := range h {
		h[i].Message, h[i].Cause = DecodeText(h[i].Message), DecodeText(h[i].Cause)
	}
	return h
}

func mapTransitions(h []Transition, f func(string) string) []Transition {
	changed := false
	for i := range h {
		if f(h[i].Message) != h[i].Message || f(h[i].Cause) != h[i].Cause {
			changed = true
			break
		}
	}
	if !changed {
		return h
	}
	out := make([]Transition, len(h))
	for i, t := range h {
		t.Message, t.Cause = f(t.Message), f(t.Cause)
		out[i] = t
	}
	return out
}

// InlineResult is the inline result to record beside ref: none when the
// result is in the blob store. A record never holds both (a worker's nil
// result arrives as JSON null beside its reference).
func InlineResult(raw json.RawMessage, ref string) json.RawMessage {
	if ref != "" {
		return nil
	}
	return raw
}

// MaxIdentifierBytes bounds identifiers users choose (flow and task names,
// queues, step keys, idempotency keys, run ids).
const MaxIdentifierBytes = 1024

// CheckIdentifier validates text that users control and that identifies
// something (a step key from baton.Key, a task or flow name, a queue, an
// idempotency key, a run id): valid UTF-8 without NUL bytes, at most
// MaxIdentifierBytes. PostgreSQL cannot store NUL or invalid UTF-8 in text,
// so every surface (SDK, engine, API, CLI) refuses them with this one rule
// and the same message. field names the input ("step key", "field \"flow\"",
// "--queue"); the error quotes the value.
func CheckIdentifier(field, value string) error {
	switch {
	case !utf8.ValidString(value):
		return fmt.Errorf("%s is not valid UTF-8: %q", field, value)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("%s must not contain a NUL byte: %q", field, value)
	case len(value) > MaxIdentifierBytes:
		return fmt.Errorf("%s is %d bytes long; at most %d are allowed", field, len(value), MaxIdentifierBytes)
	}
	return nil
}
