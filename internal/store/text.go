package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
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

// Across a transport whose strings must be valid UTF-8 (the engine
// protocol's JSON), free text would lose the bytes that are not: encoding/json
// replaces them with U+FFFD. A worker's engine therefore sends the free text
// of its records in EncodeText's form (the Wire functions, which return
// copies and leave their argument alone, so a resend encodes nothing twice)
// and the server restores it with the Unwire functions before it stores the
// records, so a worker's log line or error reads back byte for byte as a
// local run's does. Identifiers are not touched: they are valid UTF-8 by
// rule (CheckIdentifier).

// WireBatch returns b with its free text encoded for transport.
func WireBatch(b Batch) Batch {
	if batchPlain(b) {
		return b
	}
	b.Runs, b.TaskRuns, b.Events, b.Logs = slices.Clone(b.Runs), slices.Clone(b.TaskRuns), slices.Clone(b.Events), slices.Clone(b.Logs)
	mapBatchText(&b, EncodeText)
	return b
}

// UnwireBatch reverses WireBatch, in place.
func UnwireBatch(b *Batch) { mapBatchText(b, DecodeText) }

// WireTransition returns p with its free text encoded for transport.
func WireTransition(p RunTransitionParams) RunTransitionParams {
	p.Error, p.Cause, p.Message = EncodeErrorInfo(p.Error), EncodeText(p.Cause), EncodeText(p.Message)
	return p
}

// UnwireTransition reverses WireTransition, in place.
func UnwireTransition(p *RunTransitionParams) {
	p.Error, p.Cause, p.Message = DecodeErrorInfo(p.Error), DecodeText(p.Cause), DecodeText(p.Message)
}

// WireCompletions returns cs with their free text encoded for transport.
func WireCompletions(cs []TaskRunCompletion) []TaskRunCompletion {
	plain := true
	for _, c := range cs {
		plain = plain && errorPlain(c.Error) && transitionsPlain(c.History)
	}
	if plain {
		return cs
	}
	cs = slices.Clone(cs)
	mapCompletionText(cs, EncodeText)
	return cs
}

// UnwireCompletions reverses WireCompletions, in place.
func UnwireCompletions(cs []TaskRunCompletion) { mapCompletionText(cs, DecodeText) }

// mapBatchText replaces the free text of b's records with f of it. The
// ErrorInfo values and histories it changes are replaced, not modified.
func mapBatchText(b *Batch, f func(string) string) {
	for i := range b.Runs {
		if r := &b.Runs[i]; r.Error != nil {
			r.Error = mapErrorInfo(r.Error, f)
		}
	}
	for i := range b.TaskRuns {
		t := &b.TaskRuns[i]
		if t.Error != nil {
			t.Error = mapErrorInfo(t.Error, f)
		}
		t.History = mapTransitions(t.History, f)
	}
	for i := range b.Events {
		e := &b.Events[i]
		e.Message, e.Cause = f(e.Message), f(e.Cause)
	}
	for i := range b.Logs {
		b.Logs[i].Message = f(b.Logs[i].Message)
	}
}

func mapCompletionText(cs []TaskRunCompletion, f func(string) string) {
	for i := range cs {
		if cs[i].Error != nil {
			cs[i].Error = mapErrorInfo(cs[i].Error, f)
		}
		cs[i].History = mapTransitions(cs[i].History, f)
	}
}

// batchPlain reports whether EncodeText leaves all of b's free text as it is.
func batchPlain(b Batch) bool {
	for _, r := range b.Runs {
		if !errorPlain(r.Error) {
			return false
		}
	}
	for _, t := range b.TaskRuns {
		if !errorPlain(t.Error) || !transitionsPlain(t.History) {
			return false
		}
	}
	for _, e := range b.Events {
		if !plainText(e.Message) || !plainText(e.Cause) {
			return false
		}
	}
	for _, l := range b.Logs {
		if !plainText(l.Message) {
			return false
		}
	}
	return true
}

func errorPlain(e *ErrorInfo) bool {
	if e == nil {
		return true
	}
	if !plainText(e.Message) || !plainText(e.Type) || !plainText(e.Kind) {
		return false
	}
	for _, s := range e.Chain {
		if !plainText(s) {
			return false
		}
	}
	return true
}

func transitionsPlain(h []Transition) bool {
	for _, t := range h {
		if !plainText(t.Message) || !plainText(t.Cause) {
			return false
		}
	}
	return true
}
