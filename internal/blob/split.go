package blob

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// Large JSON values, such as task inputs, are recorded in two pieces: their
// large parts, in one blob, and the rest inline, in the record. A flow that
// passes one dataset to many tasks, each with its own small parameters,
// then stores the dataset once: the tasks' inputs differ, their large parts
// do not.
//
// The inline piece is a JSON object, {"parts_at":[i, ...],"value":V}: V is
// the value with each large part replaced by null, and parts_at lists the
// positions of those nulls in V, counting every value of V (members' values,
// elements and V itself) in document order from 0. The blob is the JSON
// array of the large parts, in the same order. Positions rather than paths
// survive re-encoding (whitespace, escapes) and need no key decoding.

// Split divides the JSON value src into an inline piece and the blob of its
// large parts (see above). A large part is a value of at least min bytes
// none of whose members or elements has min bytes: the largest pieces that
// hold no smaller large piece, such as a dataset's arrays beside a few
// small fields. If the inline piece would still exceed max bytes (many
// medium-sized values), src as a whole is the one part. ok is false when
// src is not valid JSON or has no part of min bytes: record it as it is.
// Join(inline, parts) returns src byte for byte, without the whitespace
// around it.
func Split(src []byte, min, max int) (inline, parts []byte, ok bool) {
	src = bytes.Trim(src, jsonSpace)
	if len(src) < min || !json.Valid(src) {
		return nil, nil, false
	}
	type cut struct{ start, end, index int }
	var cuts []cut
	removed := 0 // values of src inside earlier cuts: V has not got them
	sc := scanner{src: src, min: min, visit: func(index, start, end, size int, big bool) {
		if end-start >= min && !big {
			cuts = append(cuts, cut{start, end, index - removed})
			removed += size - 1
		}
	}}
	sc.value(0)
	inline, parts = splitPieces(src, func(yield func(start, end, index int)) {
		for _, c := range cuts {
			yield(c.start, c.end, c.index)
		}
	})
	if len(inline) > max {
		inline, parts = splitPieces(src, func(yield func(start, end, index int)) { yield(0, len(src), 0) })
	}
	return inline, parts, len(cuts) > 0
}

// splitPieces builds the inline piece and the parts of src for the cuts
// that each yields, in document order.
func splitPieces(src []byte, each func(yield func(start, end, index int))) (inline, parts []byte) {
	var v bytes.Buffer
	at := []byte(`{"parts_at":[`)
	parts = append(make([]byte, 0, len(src)+2), '[')
	last, n := 0, 0
	each(func(start, end, index int) {
		if n > 0 {
			at = append(at, ',')
			parts = append(parts, ',')
		}
		n++
		at = strconv.AppendInt(at, int64(index), 10)
		parts = append(parts, src[start:end]...)
		v.Write(src[last:start])
		v.WriteString("null")
		last = end
	})
	v.Write(src[last:])
	inline = append(append(at, `],"value":`...), v.Bytes()...)
	return append(inline, '}'), append(parts, ']')
}

// jsonSpace is the white space of JSON.
const jsonSpace = " \t\r\n"

// errCorrupt reports an inline piece that does not fit its parts.
var errCorrupt = errors.New("blob: a stored value does not match its parts")

// Join reverses Split: it returns the value whose inline piece and parts
// blob are given.
func Join(inline, parts []byte) ([]byte, error) {
	var in struct {
		PartsAt []int           `json:"parts_at"`
		Value   json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(inline, &in); err != nil || len(in.Value) == 0 {
		return nil, errCorrupt
	}
	if !json.Valid(parts) {
		return nil, errCorrupt
	}
	// The extents of the parts: the elements of the array parts.
	var ps [][2]int
	psc := scanner{src: parts, min: math.MaxInt, visit: func(index, start, end, _ int, _ bool) {
		if index > 0 && len(ps) < len(in.PartsAt)+1 {
			ps = append(ps, [2]int{start, end})
		}
	}}
	psc.elements = true
	start := psc.ws(0)
	if start >= len(parts) || parts[start] != '[' {
		return nil, errCorrupt
	}
	psc.value(start)
	if len(ps) != len(in.PartsAt) {
		return nil, errCorrupt
	}
	// The placeholders in the inline value, in document order: scalars are
	// visited in that order.
	v := in.Value
	holes := make([][2]int, 0, len(in.PartsAt))
	vsc := scanner{src: v, min: math.MaxInt, visit: func(index, start, end, size int, _ bool) {
		if k := len(holes); size == 1 && k < len(in.PartsAt) && index == in.PartsAt[k] {
			holes = append(holes, [2]int{start, end})
		}
	}}
	vsc.value(0)
	if len(holes) != len(in.PartsAt) {
		return nil, errCorrupt
	}
	out := make([]byte, 0, len(v)+len(parts))
	last := 0
	for k, h := range holes {
		if string(v[h[0]:h[1]]) != "null" {
			return nil, errCorrupt
		}
		out = append(append(out, v[last:h[0]]...), parts[ps[k][0]:ps[k][1]]...)
		last = h[1]
	}
	return append(out, v[last:]...), nil
}

// scanner walks a valid JSON document and calls visit for each value as
// it ends (a container after its contents): with its position in document
// order (index), its extent in src, the number of values in it (size: 1 for
// a scalar) and whether one of its members or elements has at least min
// bytes. With elements set, it visits only the root and the root's own
// members or elements.
type scanner struct {
	src      []byte
	min      int
	visit    func(index, start, end, size int, big bool)
	elements bool
	n        int
	depth    int
}

func (s *scanner) ws(i int) int {
	for i < len(s.src) {
		switch s.src[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// value scans the value at i (after whitespace) and returns its end.
func (s *scanner) value(i int) int {
	i = s.ws(i)
	start, index := i, s.n
	s.n++
	big := false
	switch c := s.src[i]; c {
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.depth++
		i = s.ws(i + 1)
		if s.src[i] == closer {
			i++
			s.depth--
			break
		}
		for {
			if c == '{' {
				i = s.scalar(s.ws(i)) // the key
				i = s.ws(i) + 1       // ':'
			}
			cs := s.ws(i)
			i = s.value(cs)
			if i-cs >= s.min {
				big = true
			}
			i = s.ws(i)
			if s.src[i] == ',' {
				i++
				continue
			}
			i++ // the closer
			break
		}
		s.depth--
	default:
		i = s.scalar(i)
	}
	if !s.elements || s.depth <= 1 {
		s.visit(index, start, i, s.n-index, big)
	}
	return i
}

// scalar returns the end of the string, number or literal at i.
func (s *scanner) scalar(i int) int {
	if s.src[i] == '"' {
		for i++; i < len(s.src); i++ {
			switch s.src[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return i
	}
	for i < len(s.src) {
		switch s.src[i] {
		case ',', ']', '}', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}
