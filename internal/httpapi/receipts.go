package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// visible reports whether p may see the entry whose header is h: p sees
// all tenants, or h belongs to one of p's tenants (and, for a principal
// bound to an agent, to that agent). Entries that are not receipts or
// events, and events of no tenant, are visible only to principals of all
// tenants.
func visible(p *identity.Principal, h ledger.Header, ok bool) bool {
	if p.AllTenants() && p.AgentID == "" {
		return true
	}
	return ok && p.InTenant(h.TenantID) && p.MaySeeAgent(h.AgentID)
}

// lookupReceipt finds a receipt the caller may see; 404 otherwise.
func (s *server) lookupReceipt(r *http.Request, p *identity.Principal, id string) (ledger.Record, error) {
	if checkString(id, true, oars.MaxIDLength) != "" {
		return ledger.Record{}, notFound("receipt not found")
	}
	rec, err := s.querier.ReceiptByID(r.Context(), id)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return ledger.Record{}, notFound("receipt not found")
	case err != nil:
		return ledger.Record{}, unavailable("the ledger is unavailable", err)
	}
	h, ok := ledger.ParseHeader(rec.Leaf)
	if !ok || h.Spec != ledger.SpecReceipt || !visible(p, h, ok) {
		return ledger.Record{}, notFound("receipt not found")
	}
	return rec, nil
}

// LedgerIndexHeader carries the ledger index of the receipt GET
// /v1/receipts/{id} returns.
const LedgerIndexHeader = "Oars-Ledger-Index"

// getReceipt returns one signed receipt, byte for byte as recorded, with
// its ledger index in the Oars-Ledger-Index header.
func (s *server) getReceipt(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	rec, err := s.lookupReceipt(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set(LedgerIndexHeader, strconv.FormatInt(rec.Index, 10))
	writeRaw(w, "application/json", rec.Leaf)
	return nil
}

// writeRaw writes body with content type ct and status 200.
func writeRaw(w http.ResponseWriter, ct string, body []byte) {
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// receiptList is the answer of GET /v1/receipts.
type receiptList struct {
	Receipts []json.RawMessage `json:"receipts"`
	// LedgerIndexes are the ledger indexes of Receipts, in order.
	LedgerIndexes []int64 `json:"ledger_indexes"`
	NextCursor    string  `json:"next_cursor"`
}

// listReceipts lists receipts by tenant, agent, action, status and
// issued_at, a page at a time.
func (s *server) listReceipts(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	q, err := parseQuery(r, "tenant_id", "agent_id", "action_id", "status", "since", "until", "cursor", "limit")
	if err != nil {
		return err
	}
	lq := ledger.Query{
		TenantID: q.get("tenant_id"),
		AgentID:  q.get("agent_id"),
		ActionID: q.get("action_id"),
		Status:   q.get("status"),
		Cursor:   q.get("cursor"),
	}
	for _, f := range []struct{ name, value string }{
		{"tenant_id", lq.TenantID}, {"agent_id", lq.AgentID}, {"action_id", lq.ActionID}, {"cursor", lq.Cursor},
	} {
		if q.has(f.name) && checkString(f.value, true, 1024) != "" {
			return badRequest(fmt.Sprintf("query parameter %q %s", f.name, checkString(f.value, true, 1024)))
		}
	}
	if q.has("status") && !receipt.Status(lq.Status).Valid() {
		return badRequest(`query parameter "status" is not a receipt status`)
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &lq.Since}, {"until", &lq.Until}} {
		if !q.has(t.name) {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, q.get(t.name))
		if err != nil {
			return badRequest(fmt.Sprintf("query parameter %q must be an RFC 3339 time", t.name))
		}
		*t.dst = v
	}
	limit, present, err := q.int("limit")
	if err != nil {
		return err
	}
	if present {
		if limit < 1 || limit > ledger.MaxPageSize {
			return badRequest(fmt.Sprintf("query parameter \"limit\" must be between 1 and %d", ledger.MaxPageSize))
		}
		lq.Limit = int(limit)
	}

	switch {
	case lq.TenantID != "":
		if !p.InTenant(lq.TenantID) {
			return notFound("tenant not found")
		}
	case p.AllTenants():
	case len(p.Tenants) == 1:
		lq.TenantID = p.Tenants[0]
	default:
		return badRequest(`query parameter "tenant_id" is required for a caller of several tenants`)
	}
	if p.AgentID != "" {
		if lq.AgentID != "" && lq.AgentID != p.AgentID {
			return errorf(http.StatusForbidden, codeForbidden, "the caller may not read this agent's receipts")
		}
		lq.AgentID = p.AgentID
	}

	recs, next, err := s.querier.ListReceipts(r.Context(), lq)
	if err != nil {
		if lq.Cursor != "" {
			// Queriers report a malformed cursor as a plain error: tell it
			// from an unavailable store by asking again without it.
			probe := lq
			probe.Cursor, probe.Limit = "", 1
			if _, _, perr := s.querier.ListReceipts(r.Context(), probe); perr == nil {
				return badRequest(`query parameter "cursor" is not valid`)
			}
		}
		return unavailable("the ledger is unavailable", err)
	}
	list := receiptList{Receipts: make([]json.RawMessage, 0, len(recs)), LedgerIndexes: make([]int64, 0, len(recs)), NextCursor: next}
	for _, rec := range recs {
		list.Receipts = append(list.Receipts, rec.Leaf)
		list.LedgerIndexes = append(list.LedgerIndexes, rec.Index)
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// verifyRequest is the body of POST /v1/receipts/verify: exactly one of
// its fields.
type verifyRequest struct {
	ReceiptID string         `json:"receipt_id"`
	Receipt   jsontext.Value `json:"receipt"`
}

// verifyResponse is the answer of POST /v1/receipts/verify.
type verifyResponse struct {
	Valid     bool   `json:"valid"`
	ReceiptID string `json:"receipt_id,omitempty"`
	Kid       string `json:"kid,omitempty"`
	Check     string `json:"check,omitempty"`
	Error     string `json:"error,omitempty"`
}

// verifyReceipt verifies a recorded receipt (by id) or a given one against
// the server's keys. The answer is 200 either way; valid says which.
func (s *server) verifyReceipt(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	var req verifyRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	var data []byte
	switch {
	case (req.ReceiptID != "") == (len(req.Receipt) > 0):
		return badRequest(`give exactly one of "receipt_id" and "receipt"`)
	case req.ReceiptID != "":
		rec, err := s.lookupReceipt(r, p, req.ReceiptID)
		if err != nil {
			return err
		}
		data = rec.Leaf
	default:
		if req.Receipt.Kind() != '{' {
			return badRequest(`field "receipt": want object`)
		}
		data = req.Receipt
	}
	rc, err := s.verifier.Verify(data)
	if err != nil {
		resp := verifyResponse{Valid: false, Error: err.Error()}
		if ve, ok := errors.AsType[*receipt.VerifyError](err); ok {
			resp.Check = ve.Check.String()
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	}
	writeJSON(w, http.StatusOK, verifyResponse{Valid: true, ReceiptID: rc.ReceiptID, Kid: rc.Signature.Kid})
	return nil
}
