package ledger

import (
	"bytes"
	"unicode/utf8"
)

// headerField numbers the members scanHeader extracts.
const (
	hSpec = 1 << iota
	hReceiptID
	hEventID
	hActionID
	hSeq
	hStatus
	hTenantID
	hAgentID
	hIssuedAt
)

// scanHeader extracts the header members from the top level of a JSON
// object without decoding the rest. It reports false whenever the input is
// not in the simple form it handles (escaped or invalid strings in header
// members, duplicate header members, non-integer seq, malformed top-level
// syntax); callers then fall back to a full decoder, so for valid JSON the
// result is the same as encoding the leaf with it.
func scanHeader(b []byte) (entryHeader, bool) {
	var h entryHeader
	var seen int
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return h, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return h, skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok {
			return h, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return h, false
		}
		i = skipSpace(b, i+1)
		var field int
		var dst *string
		switch string(key) {
		case "spec":
			field, dst = hSpec, &h.Spec
		case "receipt_id":
			field, dst = hReceiptID, &h.ReceiptID
		case "event_id":
			field, dst = hEventID, &h.EventID
		case "action_id":
			field, dst = hActionID, &h.ActionID
		case "status":
			field, dst = hStatus, &h.Status
		case "tenant_id":
			field, dst = hTenantID, &h.TenantID
		case "agent_id":
			field, dst = hAgentID, &h.AgentID
		case "issued_at":
			field, dst = hIssuedAt, &h.IssuedAt
		case "seq":
			field = hSeq
		}
		switch {
		case field == 0:
			if i, ok = skipValue(b, i); !ok {
				return h, false
			}
		case seen&field != 0:
			return h, false // duplicate: let the full decoder decide
		case field == hSeq:
			var n int64
			if n, i, ok = plainInt(b, i); !ok {
				return h, false
			}
			h.Seq = n
		default:
			var v []byte
			if v, i, ok = plainString(b, i); !ok {
				return h, false
			}
			*dst = string(v)
		}
		seen |= field
		i = skipSpace(b, i)
		if i >= len(b) {
			return h, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return h, skipSpace(b, i+1) == len(b)
		default:
			return h, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that needs no unescaping and is
// valid UTF-8 without control characters, returning its contents and the
// index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	end := bytes.IndexByte(b[i+1:], '"')
	if end < 0 {
		return nil, 0, false
	}
	s := b[i+1 : i+1+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, 0, false
		}
	}
	if !utf8.Valid(s) {
		return nil, 0, false
	}
	return s, i + 2 + end, true
}

// plainInt reads a non-negative JSON integer without sign, fraction or
// exponent that fits an int64.
func plainInt(b []byte, i int) (int64, int, bool) {
	start := i
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := int64(b[i] - '0')
		if n > (1<<63-1-d)/10 {
			return 0, 0, false
		}
		n = n*10 + d
		i++
	}
	if i == start || (b[start] == '0' && i-start > 1) {
		return 0, 0, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, 0, false
	}
	return n, i, true
}

// skipValue skips a JSON value by bracket matching, honouring strings and
// escapes, and returns the index after it.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				var ok bool
				if i, ok = skipString(b, i); !ok {
					return 0, false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	default:
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
			i++
		}
		return i, i > start
	}
}

func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}
