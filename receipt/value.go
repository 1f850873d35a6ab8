package receipt

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// CanonicalizeValue returns the RFC 8785 canonical form of the JSON value
// in data, as [Canonicalize] does and failing like it, together with the
// value decoded the way encoding/json decodes into an any: map[string]any
// for objects, []any for arrays, string, float64, bool or nil. Decoding the
// canonical form, which is known to be valid, costs a fraction of a second
// general-purpose decode.
func CanonicalizeValue(data []byte) (canonical []byte, value any, err error) {
	if canonical, value, ok := canonicalizeSimple(data); ok {
		return canonical, value, nil
	}
	canonical, err = Canonicalize(data)
	if err != nil {
		return nil, nil, err
	}
	value, err = decodeCanonicalValue(canonical)
	if err != nil {
		return nil, nil, fmt.Errorf("receipt: canonicalize: %w", err)
	}
	return canonical, value, nil
}

// errNotCanonical is returned by decodeCanonicalValue for input that is not
// in the form Canonicalize writes; it means a bug, not bad input.
var errNotCanonical = errors.New("internal error: not canonical JSON")

// decodeCanonicalValue decodes JSON in the canonical form Canonicalize
// writes. Canonical JSON is always in the form canonicalizeSimple takes
// (raw UTF-8 rather than surrogate escapes, finite numbers, no duplicate
// keys, at most MaxDepth levels), and is its own canonical form: anything
// else is rejected.
func decodeCanonicalValue(canonical []byte) (any, error) {
	out, v, ok := canonicalizeSimple(canonical)
	if !ok || !bytes.Equal(out, canonical) {
		return nil, errNotCanonical
	}
	return v, nil
}

// canonicalizeSimple canonicalizes and decodes data in one pass when it is
// in the form almost every action input has: finite numbers, strings
// without surrogate escapes, objects and arrays, at most MaxDepth deep. It
// reports false for anything else, valid or not (surrogate escapes,
// numbers out of range, duplicate keys, deep nesting, syntax errors), and
// the caller takes the general path, which decides and reports; so
// whenever it reports true, the result is what Canonicalize and
// decodeCanonicalValue give.
func canonicalizeSimple(data []byte) ([]byte, any, bool) {
	// out has room for a copy of the input: sorting the members of an
	// object uses the spare capacity as scratch space.
	p := simpleParser{b: data, s: string(data), out: make([]byte, 0, 2*len(data))}
	p.space()
	v, ok := p.value(0)
	if !ok {
		return nil, nil, false
	}
	p.space()
	if p.i != len(p.b) {
		return nil, nil, false
	}
	return p.out, v, true
}

// simpleParser is the state of canonicalizeSimple. Objects write their
// canonical members to out as they come and sort them there at the end.
type simpleParser struct {
	b       []byte
	s       string // b as a string, for substrings without copies
	i       int
	out     []byte
	scratch []byte
}

// simpleMember is one member of an object being parsed: its name, its
// value and where `"name":value` is in out.
type simpleMember struct {
	name       string
	value      any
	start, end int
}

func (p *simpleParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next reads what follows a member of an object or an element of an
// array: a comma, written to out (more is true), or the closing byte end,
// not written. ok is false for anything else.
func (p *simpleParser) next(end byte) (more, ok bool) {
	p.space()
	if p.i >= len(p.b) {
		return false, false
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		p.out = append(p.out, ',')
		p.space()
		return true, true
	case end:
		p.i++
		return false, true
	}
	return false, false
}

func (p *simpleParser) value(depth int) (any, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return nil, false
}

func (p *simpleParser) literal(lit string) bool {
	if len(p.s)-p.i < len(lit) || p.s[p.i:p.i+len(lit)] != lit {
		return false
	}
	p.i += len(lit)
	p.out = append(p.out, lit...)
	return true
}

// number parses a JSON number and appends its RFC 8785 form to out.
// Integers of at most 15 digits are written as they are; other numbers as
// gowebpki/jcs writes the double they denote. Numbers beyond the range of
// doubles are left to the general path.
func (p *simpleParser) number() (any, bool) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	intStart := p.i
	p.digits()
	nInt := p.i - intStart
	if nInt == 0 || p.b[intStart] == '0' && nInt > 1 {
		return nil, false
	}
	simple := nInt <= 15 && !(p.b[intStart] == '0' && intStart > start) // not -0
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return nil, false
		}
		simple = false
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, false
		}
		simple = false
	}
	lit := p.s[start:p.i]
	if simple {
		var n int64
		for _, c := range lit[intStart-start:] {
			n = n*10 + int64(c-'0')
		}
		if intStart > start {
			n = -n
		}
		p.out = append(p.out, lit...)
		return float64(n), true
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return nil, false
	}
	text, err := jcs.NumberToJSON(f)
	if err != nil {
		return nil, false
	}
	p.out = append(p.out, text...)
	if f == 0 {
		f = 0 // -0 is written as 0, which decodes as +0
	}
	return f, true
}

// digits skips decimal digits and returns how many there were.
func (p *simpleParser) digits() int {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// str parses a string and appends its canonical form to out.
func (p *simpleParser) str() (string, bool) {
	start := p.i + 1
	j := start
	for j < len(p.b) && plainASCII[p.b[j]] {
		j++
	}
	ascii := true
	for ; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			raw := p.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			p.i = j + 1
			// Without escapes and control characters, the string is
			// already in its RFC 8785 form.
			p.out = append(p.out, p.b[start-1:p.i]...)
			return p.s[start:j], true
		case c == '\\':
			return p.escapedStr(start, j)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// escapedStr parses the string starting at start whose first escape is at
// j, and appends its canonical form to out.
func (p *simpleParser) escapedStr(start, j int) (string, bool) {
	dec := append(p.scratch[:0], p.b[start:j]...)
	for j < len(p.b) {
		c := p.b[j]
		switch {
		case c == '"':
			p.scratch = dec
			if !utf8.Valid(dec) {
				return "", false
			}
			p.i = j + 1
			s := string(dec)
			var ok bool
			if p.out, ok = appendString(p.out, s); !ok {
				return "", false
			}
			return s, true
		case c < 0x20:
			return "", false
		case c != '\\':
			dec = append(dec, c)
			j++
			continue
		}
		if j+1 >= len(p.b) {
			return "", false
		}
		switch p.b[j+1] {
		case '"', '\\', '/':
			dec = append(dec, p.b[j+1])
		case 'b':
			dec = append(dec, '\b')
		case 'f':
			dec = append(dec, '\f')
		case 'n':
			dec = append(dec, '\n')
		case 'r':
			dec = append(dec, '\r')
		case 't':
			dec = append(dec, '\t')
		case 'u':
			r, ok := p.hex4(j + 2)
			if !ok || utf16.IsSurrogate(r) {
				return "", false // surrogates: leave pairs and lone ones to the general path
			}
			dec = utf8.AppendRune(dec, r)
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// hex4 reads four hex digits at i.
func (p *simpleParser) hex4(i int) (rune, bool) {
	if i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (p *simpleParser) object(depth int) (any, bool) {
	if depth > MaxDepth {
		return nil, false
	}
	p.i++ // '{'
	var buf [8]simpleMember
	ms := buf[:0]
	outStart := len(p.out)
	p.out = append(p.out, '{')
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.out = append(p.out, '}')
		return map[string]any{}, true
	}
	for {
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, false
		}
		mstart := len(p.out)
		name, ok := p.str()
		if !ok {
			return nil, false
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.out = append(p.out, ':')
		p.space()
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		ms = append(ms, simpleMember{name: name, value: v, start: mstart, end: len(p.out)})
		if more, ok := p.next('}'); !ok {
			return nil, false
		} else if !more {
			break
		}
	}
	if !slices.IsSortedFunc(ms, compareMembers) {
		slices.SortFunc(ms, compareMembers)
		// Write the members again in order, from a copy.
		// The copy goes to the spare capacity of out when it fits, beyond
		// everything written again below (which has the same length).
		members := p.out[outStart+1:]
		var tmp []byte
		if spare := p.out[len(p.out):cap(p.out)]; len(members) <= len(spare) {
			tmp = append(spare[:0], members...)
		} else {
			p.scratch = append(p.scratch[:0], members...)
			tmp = p.scratch
		}
		p.out = p.out[:outStart+1]
		for k, m := range ms {
			if k > 0 {
				p.out = append(p.out, ',')
			}
			p.out = append(p.out, tmp[m.start-outStart-1:m.end-outStart-1]...)
		}
	}
	m := make(map[string]any, len(ms))
	for k, mem := range ms {
		if k > 0 && ms[k-1].name == mem.name {
			return nil, false // duplicate: the general path reports it
		}
		m[mem.name] = mem.value
	}
	p.out = append(p.out, '}')
	return m, true
}

// compareMembers orders object members as RFC 8785 does: by the UTF-16
// code units of their names.
func compareMembers(a, b simpleMember) int {
	return compareUTF16(a.name, b.name)
}

// compareUTF16 compares valid UTF-8 strings by their UTF-16 code units.
// That is their byte order except where a character beyond U+FFFF (a
// surrogate pair in UTF-16) meets one in U+E000 to U+FFFF.
func compareUTF16(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return cmp.Compare(len(a), len(b))
	}
	if a[i] < utf8.RuneSelf || b[i] < utf8.RuneSelf {
		return cmp.Compare(a[i], b[i])
	}
	// Back up to the start of the differing characters, which begin at
	// the same offset since everything before is equal.
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	return cmp.Compare(utf16Unit(ra), utf16Unit(rb))
}

// utf16Unit returns the first UTF-16 code unit of r.
func utf16Unit(r rune) rune {
	if r >= 0x10000 {
		r1, _ := utf16.EncodeRune(r)
		return r1
	}
	return r
}

func (p *simpleParser) array(depth int) (any, bool) {
	if depth > MaxDepth {
		return nil, false
	}
	p.i++ // '['
	p.out = append(p.out, '[')
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.out = append(p.out, ']')
		return []any{}, true
	}
	var buf [8]any
	elems := buf[:0]
	for {
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		elems = append(elems, v)
		if more, ok := p.next(']'); !ok {
			return nil, false
		} else if !more {
			break
		}
	}
	p.out = append(p.out, ']')
	return slices.Clone(elems), true
}
