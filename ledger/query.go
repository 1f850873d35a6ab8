package ledger

import (
	"context"
	"errors"
	"time"

	"github.com/go-json-experiment/json"
)

// ErrNotFound is returned by a [Querier] when no entry matches.
var ErrNotFound = errors.New("ledger: not found")

// ErrDuplicate is wrapped by the error a [Querier] store returns from
// [Store.Append] when it refuses a batch holding a duplicate receipt (see
// [Querier]). Callers that use the uniqueness of (action_id, seq) to
// decide races, as the approval workflow does for its execution claim,
// test for it with errors.Is: the receipt was not stored because another
// one with that id or that place in its action's chain already was.
var ErrDuplicate = errors.New("ledger: duplicate entry")

// Header is the part of an entry that stores index for queries: the
// identifying fields shared by OARS receipts (spec oars.receipt.v1) and
// events (spec oars.event.v1). Fields an entry lacks are zero.
type Header struct {
	Spec      string
	ReceiptID string // receipts only
	EventID   string // events only
	ActionID  string // receipts only
	Seq       int64  // receipts only
	Status    string // receipts only
	TenantID  string
	AgentID   string
	IssuedAt  time.Time
}

// Record is one stored entry: its index in the log and its exact bytes.
type Record struct {
	Index int64
	Leaf  []byte
}

// Query selects receipts for [Querier.ListReceipts]. Zero fields do not
// filter; set fields must all match (string fields exactly, case and all).
// Results are in ledger index order.
type Query struct {
	TenantID string
	AgentID  string
	ActionID string
	Status   string
	// Since and Until bound issued_at: Since <= issued_at < Until, compared
	// as instants (the time zone of the bound does not matter).
	Since time.Time
	Until time.Time
	// Cursor is the opaque cursor returned with the previous page of the
	// same query; empty for the first page. A cursor stays valid while
	// the log grows: later pages include receipts appended since.
	Cursor string
	// Limit bounds the page size; zero or negative means DefaultPageSize,
	// and it is capped at MaxPageSize.
	Limit int
}

// Page sizes for [Query].
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Querier is an optional interface of a [Store] that indexes the receipts
// it holds. The append path never needs it: a minimal adapter can skip it
// and [NewQuerier] falls back to scanning the log. Servers, approvals and
// evidence export use it to find receipts without reading every leaf.
//
// A store that implements Querier indexes each leaf when it is appended, in
// the same transaction, from [ParseHeader]; a leaf that is not a receipt
// is stored but not indexed as one.
//
// A receipt whose receipt_id, or whose (action_id, seq), an earlier
// receipt in the log already has, or an earlier receipt of the same Append
// has, is a duplicate. A store refuses the whole Append holding it, storing
// nothing of it, with an error that wraps [ErrDuplicate] and not
// [ErrConflict]. Writers rely on this: of two receipts racing for the same
// (action_id, seq), exactly one is stored, which is how concurrent
// approvers, Guards and server replicas agree on who executes an approved
// action. (The scanning querier of [NewQuerier] cannot refuse anything: over
// a plain Store that stores a duplicate, it indexes the first receipt with
// the id and ignores the later one.)
//
// Implementations are safe for concurrent use, honour ctx, and return
// Records whose Leaf the caller may keep and modify.
type Querier interface {
	// ReceiptByID returns the receipt whose receipt_id is id, or an error
	// wrapping ErrNotFound.
	ReceiptByID(ctx context.Context, id string) (Record, error)

	// ActionReceipts returns the receipts of action id in seq order; an
	// empty slice and a nil error when there are none.
	ActionReceipts(ctx context.Context, actionID string) ([]Record, error)

	// ListReceipts returns the receipts matching q in index order, at most
	// the page size, and the cursor of the next page: non-empty exactly
	// when more matching receipts follow, "" otherwise. A malformed cursor
	// is an error.
	ListReceipts(ctx context.Context, q Query) ([]Record, string, error)
}

// entryHeader is the JSON shape ParseHeader reads.
type entryHeader struct {
	Spec      string `json:"spec"`
	ReceiptID string `json:"receipt_id"`
	EventID   string `json:"event_id"`
	ActionID  string `json:"action_id"`
	Seq       int64  `json:"seq"`
	Status    string `json:"status"`
	TenantID  string `json:"tenant_id"`
	AgentID   string `json:"agent_id"`
	IssuedAt  string `json:"issued_at"`
}

// Entry specs that [ParseHeader] recognises.
const (
	SpecReceipt = "oars.receipt.v1"
	SpecEvent   = "oars.event.v1"
)

// ParseHeader extracts the indexable fields of an OARS receipt or event
// leaf. It reports false for a leaf that is not a JSON object with a known
// spec, the identifying fields of that spec (receipt_id, action_id and a
// seq of at least 1 for receipts, event_id for events) and an RFC 3339
// issued_at; such leaves are stored but not indexed. IssuedAt is in UTC.
// ParseHeader does not verify signatures: indexes are for finding entries,
// and what is found is verified by its reader.
//
// The top level of the leaf is read by a fast scanner that stops at nothing
// it does not understand: a leaf with escapes in a header field, a
// non-integer seq or anything unusual is decoded by a full JSON decoder
// instead. Values outside the header fields are skipped by bracket
// matching, not validated: a leaf whose header parses may hold invalid JSON
// elsewhere (the ledger never interprets leaves; readers verify them).
func ParseHeader(leaf []byte) (Header, bool) {
	h, ok := scanHeader(leaf)
	if !ok {
		h = entryHeader{}
		if err := json.Unmarshal(leaf, &h); err != nil {
			return Header{}, false
		}
	}
	out := Header{
		Spec: h.Spec, ReceiptID: h.ReceiptID, EventID: h.EventID, ActionID: h.ActionID,
		Seq: h.Seq, Status: h.Status, TenantID: h.TenantID, AgentID: h.AgentID,
	}
	t, err := time.Parse(time.RFC3339Nano, h.IssuedAt)
	if err != nil {
		return Header{}, false
	}
	out.IssuedAt = t.UTC()
	switch h.Spec {
	case SpecReceipt:
		if h.ReceiptID == "" || h.ActionID == "" || h.Seq < 1 {
			return Header{}, false
		}
	case SpecEvent:
		if h.EventID == "" {
			return Header{}, false
		}
		out.ReceiptID, out.ActionID, out.Seq, out.Status = "", "", 0, ""
	default:
		return Header{}, false
	}
	return out, true
}
