package ledger

import (
	"bytes"
	"strings"
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
//
// The string members share one allocation (they are indexed for the life
// of a store, and a leaf has up to eight of them), except the specs, which
// are the constants.
func scanHeader(b []byte) (entryHeader, bool) {
	var h entryHeader
	var seen int
	// spans[k] is where the value of string member k is in b.
	var spans [numStringFields]struct{ start, end int }
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
		field, k := headerField(key)
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
			spans[k].end = i - 1
			spans[k].start = spans[k].end - len(v)
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
			if skipSpace(b, i+1) != len(b) {
				return h, false
			}
			h.setStrings(b, &spans)
			return h, true
		default:
			return h, false
		}
	}
}

// The string members of entryHeader, as indexes of scanHeader's spans.
const (
	fSpec = iota
	fReceiptID
	fEventID
	fActionID
	fStatus
	fTenantID
	fAgentID
	fIssuedAt
	numStringFields
)

// headerField returns the header member key names, as its bit and, for a
// string member, its index; 0 for any other key.
func headerField(key []byte) (bit, index int) {
	switch string(key) {
	case "spec":
		return hSpec, fSpec
	case "receipt_id":
		return hReceiptID, fReceiptID
	case "event_id":
		return hEventID, fEventID
	case "action_id":
		return hActionID, fActionID
	case "status":
		return hStatus, fStatus
	case "tenant_id":
		return hTenantID, fTenantID
	case "agent_id":
		return hAgentID, fAgentID
	case "issued_at":
		return hIssuedAt, fIssuedAt
	case "seq":
		return hSeq, -1
	}
	return 0, -1
}

// setStrings sets the string members of h from the spans of b, copying
// them into one string.
func (h *entryHeader) setStrings(b []byte, spans *[numStringFields]struct{ start, end int }) {
	spec := b[spans[fSpec].start:spans[fSpec].end]
	switch string(spec) {
	case SpecReceipt:
		h.Spec = SpecReceipt
	case SpecEvent:
		h.Spec = SpecEvent
	}
	n := 0
	for k := range spans {
		if k != fSpec || h.Spec == "" {
			n += spans[k].end - spans[k].start
		}
	}
	if n == 0 {
		return
	}
	var sb strings.Builder
	sb.Grow(n)
	var ends [numStringFields]int
	for k := range spans {
		if k != fSpec || h.Spec == "" {
			sb.Write(b[spans[k].start:spans[k].end])
		}
		ends[k] = sb.Len()
	}
	all := sb.String()
	at := func(k int) string {
		if k == 0 {
			return all[:ends[0]]
		}
		return all[ends[k-1]:ends[k]]
	}
	if h.Spec == "" {
		h.Spec = at(fSpec)
	}
	h.ReceiptID = at(fReceiptID)
	h.EventID = at(fEventID)
	h.ActionID = at(fActionID)
	h.Status = at(fStatus)
	h.TenantID = at(fTenantID)
	h.AgentID = at(fAgentID)
	h.IssuedAt = at(fIssuedAt)
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
	plain, ascii := plainBytes(s)
	if !plain || !ascii && !utf8.Valid(s) {
		return nil, 0, false
	}
	return s, i + 2 + end, true
}

// plainBytes reports whether s holds no control character and no
// backslash, and whether it is all ASCII.
func plainBytes(s []byte) (plain, ascii bool) {
	ascii = true
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return false, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return true, ascii
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

// skipString returns the index after the JSON string at b[i], which is a
// quote, or false if it is unterminated.
func skipString(b []byte, i int) (int, bool) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		// The quote ends the string unless an odd number of backslashes
		// escapes it.
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, true
		}
		j++
	}
}
