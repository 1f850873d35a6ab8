// Package strictjson validates untrusted JSON strictly and canonicalizes it
// with RFC 8785 (JCS).
//
// Strict means the input is exactly one JSON value (RFC 8259) that can be
// canonicalized without changing its meaning:
//
//   - no duplicate object member names, compared after unescaping
//     ({"a":1,"\u0061":2} is a duplicate);
//   - valid UTF-8 everywhere, and \uXXXX escapes that decode to Unicode
//     scalar values (a lone or reversed surrogate is invalid);
//   - every number is finite as an IEEE 754 double (1e400 is rejected;
//     -0, 1.0 and 1e2 are fine and canonicalize to 0, 1 and 100);
//   - objects and arrays nest at most [MaxDepth] levels;
//   - nothing but whitespace after the value.
//
// Input that breaks a rule is rejected, never repaired. Every error is an
// [*Error] wrapping one of the sentinels ([ErrSyntax], [ErrDuplicateKey],
// [ErrInvalidUTF8], [ErrNumberRange], [ErrTooDeep], [ErrTrailingData],
// [ErrEmpty]) so callers can branch with errors.Is; messages give the
// location but never the offending values.
//
// Size limits are not this package's job: callers bound input size first.
//
// The functions are safe for concurrent use.
package strictjson

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxDepth is the deepest nesting of objects and arrays accepted: a
// top-level [] or {} is depth 1.
const MaxDepth = 64

// Sentinel errors, wrapped by every [*Error]. Test for them with errors.Is.
var (
	// ErrSyntax: the input is not JSON (RFC 8259).
	ErrSyntax = errors.New("syntax error")
	// ErrDuplicateKey: an object has two members with the same name.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrInvalidUTF8: a string holds invalid UTF-8 or an escape that is not
	// a Unicode scalar value (such as a lone surrogate "\ud800").
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrNumberRange: a number is not finite as an IEEE 754 double.
	ErrNumberRange = errors.New("number out of range")
	// ErrTooDeep: objects and arrays nest deeper than MaxDepth.
	ErrTooDeep = errors.New("nesting too deep")
	// ErrTrailingData: something other than whitespace follows the value.
	ErrTrailingData = errors.New("trailing data")
	// ErrEmpty: the input is empty or only whitespace.
	ErrEmpty = errors.New("empty input")
)

// Error describes why input is not strict JSON.
type Error struct {
	// Err is one of the package's sentinel errors.
	Err error
	// Offset is the byte offset in the input at or after which the problem
	// was found.
	Offset int64
	// Path is the JSON Pointer (RFC 6901) to the offending value or member
	// name where known, "" otherwise or for the top-level value.
	Path string
}

// maxPathInMessage bounds the length of the path quoted in Error messages.
const maxPathInMessage = 100

// Error returns a message such as "json: duplicate key at /a/b (offset 17)".
// The path is truncated and non-printable characters are escaped; values
// from the input are never included.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("json: ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	if e.Path != "" {
		b.WriteString(" at ")
		b.WriteString(printablePath(e.Path))
	}
	b.WriteString(" (offset ")
	b.WriteString(strconv.FormatInt(e.Offset, 10))
	b.WriteString(")")
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// printablePath escapes non-printable runes and invalid UTF-8 in p and
// truncates it.
func printablePath(p string) string {
	truncated := false
	if len(p) > maxPathInMessage {
		p = p[:maxPathInMessage]
		truncated = true
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			if truncated && !utf8.FullRuneInString(p[i:]) {
				i = len(p) // a rune cut by truncation
				continue
			}
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(p[i]), 16))
		case strconv.IsPrint(r):
			b.WriteString(p[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	if truncated {
		b.WriteString("...")
	}
	return b.String()
}

// Check reports whether data is strict JSON: it returns nil if it is and an
// [*Error] saying why not otherwise. It does not retain data.
func Check(data []byte) error {
	if err := precheck(data); err != nil {
		return err
	}
	if !jsontext.Value(data).IsValid() {
		return diagnose(data)
	}
	return nil
}

// Canonicalize checks data like [Check] and returns its RFC 8785 canonical
// form in a new slice. It does not modify or retain data.
func Canonicalize(data []byte) ([]byte, error) {
	if err := precheck(data); err != nil {
		return nil, err
	}
	out, err := jsontext.AppendFormat(make([]byte, 0, len(data)), data,
		jsontext.CanonicalizeRawInts(true),
		jsontext.CanonicalizeRawFloats(true),
		jsontext.ReorderRawObjects(true))
	if err != nil {
		return nil, diagnose(data)
	}
	return out, nil
}

// precheck rejects empty input, nesting deeper than MaxDepth and numbers
// out of the range of a double: the rules jsontext does not enforce. It is
// a single scan that only needs to be exact on syntactically valid JSON;
// on invalid JSON it may report one of these errors instead of ErrSyntax.
func precheck(data []byte) error {
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
		return &Error{Err: ErrEmpty, Offset: int64(len(data))}
	}
	depth := 0
	for i := 0; i < len(data); {
		switch c := data[i]; {
		case c == '"':
			end, ok := stringEnd(data, i)
			if !ok {
				return nil // unterminated string: jsontext reports it
			}
			i = end
		case c == '[' || c == '{':
			depth++
			if depth > MaxDepth {
				return withPath(data, &Error{Err: ErrTooDeep, Offset: int64(i)})
			}
			i++
		case c == ']' || c == '}':
			depth--
			i++
		case c == '-' || '0' <= c && c <= '9':
			j := i + 1
			check := false
			for j < len(data) && isNumberByte(data[j]) {
				if data[j] == 'e' || data[j] == 'E' {
					check = true
				}
				j++
			}
			// Without an exponent, fewer than 309 digits are below the
			// largest double (about 1.8e308).
			if check || j-i > 308 {
				// ParseFloat returns ±Inf with ErrRange on overflow; an
				// underflow to zero is fine (JCS writes it as 0).
				if f, err := strconv.ParseFloat(string(data[i:j]), 64); errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0) {
					return withPath(data, &Error{Err: ErrNumberRange, Offset: int64(i)})
				}
			}
			i = j
		default:
			i++
		}
	}
	return nil
}

// stringEnd returns the offset just after the string starting with the
// quote at data[start], and false if the string is unterminated.
func stringEnd(data []byte, start int) (int, bool) {
	j := start + 1
	for {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		// The quote ends the string unless an odd number of backslashes
		// precede it.
		n := 0
		for p := j - 1; p > start && data[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, true
		}
		j++
	}
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// diagnose returns the *Error for data that jsontext rejected.
func diagnose(data []byte) error {
	d := jsontext.NewDecoder(bytes.NewBuffer(data))
	if _, err := d.ReadValue(); err != nil {
		return classify(data, err)
	}
	// The first value is valid, so the problem is what follows it.
	end := int(d.InputOffset())
	if end < 0 || end > len(data) {
		end = len(data)
	}
	rest := bytes.TrimLeft(data[end:], " \t\r\n")
	return &Error{Err: ErrTrailingData, Offset: int64(len(data) - len(rest))}
}

// classify maps an error of jsontext's decoder to an *Error.
func classify(data []byte, err error) error {
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return &Error{Err: ErrSyntax, Offset: int64(len(data))}
	}
	e := &Error{Err: ErrSyntax, Offset: se.ByteOffset, Path: string(se.JSONPointer)}
	switch {
	case se.Err == jsontext.ErrDuplicateName:
		e.Err = ErrDuplicateKey
	case badUnicodeAt(data, se.ByteOffset) || se.Err != nil && se.Err.Error() == ErrInvalidUTF8.Error():
		e.Err = ErrInvalidUTF8
	}
	return e
}

// badUnicodeAt reports whether data holds, at off, a byte that does not
// start valid UTF-8 or a \uXXXX escape with four hex digits. jsontext
// reports invalid UTF-8 and surrogate errors at such an offset; a
// well-formed \u escape there can only be an invalid surrogate.
func badUnicodeAt(data []byte, off int64) bool {
	if off < 0 || off >= int64(len(data)) {
		return false
	}
	rest := data[off:]
	if rest[0] >= utf8.RuneSelf {
		r, n := utf8.DecodeRune(rest)
		return r == utf8.RuneError && n <= 1
	}
	if len(rest) >= 6 && rest[0] == '\\' && rest[1] == 'u' {
		_, err := strconv.ParseUint(string(rest[2:6]), 16, 16)
		return err == nil
	}
	return false
}

// withPath fills in e.Path with the JSON Pointer of the token at e.Offset,
// as far as the input before it can be decoded.
func withPath(data []byte, e *Error) *Error {
	d := jsontext.NewDecoder(bytes.NewBuffer(data))
	for d.InputOffset() <= e.Offset {
		if _, err := d.ReadToken(); err != nil {
			if err != io.EOF {
				return e
			}
			break
		}
	}
	e.Path = string(d.StackPointer())
	return e
}
