package httpapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/approval/stepup"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// StepUp verifies and enrolls the second factor of approvers. It is what
// the API needs of a *stepup.TOTP.
type StepUp interface {
	// Verify returns nil only when code is a valid, unused second factor
	// of userID in tenantID now, and consumes it; see stepup.TOTP.Verify
	// for its errors.
	Verify(ctx context.Context, tenantID, userID, code string) error
	// Enroll creates, stores and returns a new secret of userID in
	// tenantID with its otpauth:// URL; see stepup.TOTP.Enroll.
	Enroll(ctx context.Context, tenantID, userID string) (secret, otpauthURL string, err error)
}

// InputStore keeps the canonical input of actions held for approval, so
// that the server can execute them once approved: the receipts hold only
// the input's digest.
type InputStore interface {
	// PutInput stores input for action actionID of tenant tenantID. It is
	// idempotent: storing an action's input again keeps the first one. It
	// must be durable when it returns nil.
	PutInput(ctx context.Context, actionID, tenantID string, input []byte) error
}

// Error codes of the approval routes.
const (
	codeStepUpRequired = "step_up_required"
	codeInvalidCode    = "invalid_code"
	codeCodeReplayed   = "code_replayed"
	codeNotEnrolled    = "step_up_not_enrolled"
	codeSelfApproval   = "self_approval"
	codeNotApprover    = "not_approver"
	codeNotRequester   = "not_requester"
	codeNotPending     = "not_pending"
	codeAlreadyVoted   = "already_voted"
	codeExpired        = "expired"
)

// Limits of GET /v1/approvals.
const (
	defaultApprovalPage = 20
	maxApprovalPage     = 100
)

// approvalStatuses are the values of GET /v1/approvals?status=.
var approvalStatuses = map[string]receipt.Status{
	"pending":   receipt.StatusPendingApproval,
	"approved":  receipt.StatusApproved,
	"rejected":  receipt.StatusRejected,
	"expired":   receipt.StatusExpired,
	"cancelled": receipt.StatusCancelled,
}

// approvalView is an action held for approval as the API shows it.
type approvalView struct {
	ActionID    string           `json:"action_id"`
	TenantID    string           `json:"tenant_id"`
	AgentID     string           `json:"agent_id"`
	Requester   string           `json:"requester"`
	Resource    receipt.Resource `json:"resource"`
	InputDigest string           `json:"input_digest"`
	// Status is the action's status: pending_approval, approved,
	// rejected, expired, cancelled, executing, executed, failed or
	// dead_lettered.
	Status      receipt.Status  `json:"status"`
	Requirement requirementView `json:"requirement"`
	Votes       []voteView      `json:"votes"`
	Reasons     []string        `json:"reasons"`
	RequestedAt time.Time       `json:"requested_at"`
	// Receipts are the action's signed receipts byte for byte,
	// LedgerIndexes their indexes in the ledger.
	Receipts      []json.RawMessage `json:"receipts"`
	LedgerIndexes []int64           `json:"ledger_indexes"`
}

type requirementView struct {
	Roles     []string  `json:"roles"`
	Users     []string  `json:"users"`
	Quorum    int       `json:"quorum"`
	ExpiresAt time.Time `json:"expires_at"`
	StepUp    bool      `json:"step_up"`
}

type voteView struct {
	Approver     string            `json:"approver"`
	Roles        []string          `json:"roles"`
	Decision     approval.Decision `json:"decision"`
	Reason       string            `json:"reason"`
	StepUpMethod string            `json:"step_up_method,omitempty"`
	ReceiptID    string            `json:"receipt_id"`
	At           time.Time         `json:"at"`
}

// nonNil returns s, or an empty slice for nil, so that JSON has [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// newApprovalView builds the view of st from the action's entries.
func newApprovalView(st *approval.State, entries []oars.Entry) approvalView {
	v := approvalView{
		ActionID:    st.ActionID,
		TenantID:    st.TenantID,
		AgentID:     st.AgentID,
		Requester:   st.RequesterUserID,
		Resource:    st.Resource,
		InputDigest: st.InputDigest,
		Status:      st.Status,
		Requirement: requirementView{
			Roles:     nonNil(st.Requirement.Roles),
			Users:     nonNil(st.Requirement.Users),
			Quorum:    st.Requirement.Quorum,
			ExpiresAt: st.Requirement.ExpiresAt.UTC(),
			StepUp:    st.Requirement.StepUp,
		},
		Votes:         []voteView{},
		Reasons:       nonNil(st.Reasons),
		RequestedAt:   st.RequestedAt.UTC(),
		Receipts:      make([]json.RawMessage, 0, len(entries)),
		LedgerIndexes: make([]int64, 0, len(entries)),
	}
	for _, vt := range st.Votes {
		v.Votes = append(v.Votes, voteView{
			Approver: vt.UserID, Roles: nonNil(vt.Roles), Decision: vt.Decision, Reason: vt.Reason,
			StepUpMethod: vt.StepUpMethod, ReceiptID: vt.ReceiptID, At: vt.At.UTC(),
		})
	}
	for _, e := range entries {
		v.Receipts = append(v.Receipts, e.Bytes)
		v.LedgerIndexes = append(v.LedgerIndexes, e.Index)
	}
	return v
}

// derive returns the approval state of an action's entries.
func derive(entries []oars.Entry) (*approval.State, error) {
	ae := make([]approval.Entry, len(entries))
	for i, e := range entries {
		ae[i] = approval.Entry{Receipt: e.Receipt, Bytes: e.Bytes}
	}
	return approval.Derive(ae)
}

// lookupApproval reads the action id held for approval that p may see.
// Unknown actions, actions of tenants or agents p may not see and actions
// never held for approval are 404 alike.
func (s *server) lookupApproval(ctx context.Context, p *identity.Principal, id string) (*approval.State, []oars.Entry, error) {
	if checkString(id, true, oars.MaxIDLength) != "" {
		return nil, nil, notFound("approval not found")
	}
	entries, err := s.guard.Receipts(ctx, id)
	switch {
	case errors.Is(err, oars.ErrNotFound):
		return nil, nil, notFound("approval not found")
	case err != nil:
		return nil, nil, unavailable("the ledger is unavailable", err)
	}
	first := entries[0].Receipt
	if !p.InTenant(first.TenantID) || !p.MaySeeAgent(first.AgentID) {
		return nil, nil, notFound("approval not found")
	}
	st, err := derive(entries)
	switch {
	case errors.Is(err, approval.ErrNotApproval):
		return nil, nil, notFound("approval not found")
	case err != nil:
		return nil, nil, internal(err)
	}
	return st, entries, nil
}

// getApproval returns the view of one action held for approval.
func (s *server) getApproval(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	st, entries, err := s.lookupApproval(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newApprovalView(st, entries))
	return nil
}

// approvalList is the answer of GET /v1/approvals.
type approvalList struct {
	Approvals  []approvalView `json:"approvals"`
	NextCursor string         `json:"next_cursor"`
}

// approvalCursor is the decoded cursor of GET /v1/approvals: the status
// listed and, for pending approvals, the (requested_at, action_id) of the
// last one listed, for the others the ledger's cursor.
type approvalCursor struct {
	Status      string    `json:"s"`
	RequestedAt time.Time `json:"t,omitzero"`
	ActionID    string    `json:"a,omitempty"`
	Ledger      string    `json:"c,omitempty"`
}

func (c approvalCursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		return "" // cannot happen for this type
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeApprovalCursor(s, status string) (approvalCursor, error) {
	bad := badRequest(`query parameter "cursor" is not valid`)
	var c approvalCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || decodeStrict(b, &c) != nil || c.Status != status {
		return c, bad
	}
	return c, nil
}

// listTenant returns the tenant a listing by p covers: the one named in
// the query (404 if p may not see it), p's only tenant, or "" for all
// tenants when p sees them all. A caller of several tenants must name one.
func listTenant(p *identity.Principal, named string, given bool) (string, error) {
	switch {
	case given:
		if !p.InTenant(named) {
			return "", notFound("tenant not found")
		}
		return named, nil
	case p.AllTenants():
		return "", nil
	case len(p.Tenants) == 1:
		return p.Tenants[0], nil
	}
	return "", badRequest(`query parameter "tenant_id" is required for a caller of several tenants`)
}

// listApprovals lists actions held for approval by status (default
// pending), a page at a time.
//
// The cursor is opaque to clients: base64url of a small JSON object that
// names the status it belongs to and where the last page ended. Pending
// approvals are listed oldest first, and the cursor holds the request time
// and action id of the last one listed, so approvals decided between two
// pages do not shift the next page. The other statuses are listed in
// ledger order of their outcome receipts (approved lists the actions that
// were approved, whatever their status now), and the cursor wraps the
// ledger's.
func (s *server) listApprovals(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	q, err := parseQuery(r, "tenant_id", "status", "cursor", "limit")
	if err != nil {
		return err
	}
	if q.has("tenant_id") {
		if msg := checkString(q.get("tenant_id"), true, oars.MaxIDLength); msg != "" {
			return badRequest(`query parameter "tenant_id" ` + msg)
		}
	}
	statusName := "pending"
	if q.has("status") {
		statusName = q.get("status")
	}
	status, ok := approvalStatuses[statusName]
	if !ok {
		return badRequest(`query parameter "status" must be pending, approved, rejected, expired or cancelled`)
	}
	limit := defaultApprovalPage
	n, present, err := q.int("limit")
	if err != nil {
		return err
	}
	if present {
		if n < 1 || n > maxApprovalPage {
			return badRequest(fmt.Sprintf(`query parameter "limit" must be between 1 and %d`, maxApprovalPage))
		}
		limit = int(n)
	}
	var cursor approvalCursor
	if q.has("cursor") {
		if cursor, err = decodeApprovalCursor(q.get("cursor"), statusName); err != nil {
			return err
		}
	}
	tenant, err := listTenant(p, q.get("tenant_id"), q.has("tenant_id"))
	if err != nil {
		return err
	}
	var list approvalList
	if status == receipt.StatusPendingApproval {
		list, err = s.listPending(r.Context(), p, tenant, cursor, limit)
	} else {
		list, err = s.listDecided(r, p, tenant, status, cursor, limit)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// listPending lists a page of the pending approvals of tenant (all if
// empty) that p may see, after cursor.
func (s *server) listPending(ctx context.Context, p *identity.Principal, tenant string, cursor approvalCursor, limit int) (approvalList, error) {
	states, err := s.guard.PendingApprovals(ctx, tenant)
	if err != nil {
		return approvalList{}, unavailable("the ledger is unavailable", err)
	}
	states = slices.DeleteFunc(states, func(st *approval.State) bool { return !p.MaySeeAgent(st.AgentID) })
	key := func(st *approval.State) approvalCursor {
		return approvalCursor{Status: "pending", RequestedAt: st.RequestedAt.UTC(), ActionID: st.ActionID}
	}
	after := func(a, b approvalCursor) int {
		return cmp.Or(a.RequestedAt.Compare(b.RequestedAt), strings.Compare(a.ActionID, b.ActionID))
	}
	slices.SortFunc(states, func(a, b *approval.State) int { return after(key(a), key(b)) })
	if cursor.ActionID != "" {
		states = slices.DeleteFunc(states, func(st *approval.State) bool { return after(key(st), cursor) <= 0 })
	}
	list := approvalList{Approvals: []approvalView{}}
	for i, st := range states {
		if i == limit {
			list.NextCursor = key(states[i-1]).encode()
			break
		}
		entries, err := s.guard.Receipts(ctx, st.ActionID)
		if err != nil {
			return approvalList{}, unavailable("the ledger is unavailable", err)
		}
		fresh, err := derive(entries)
		if err != nil {
			return approvalList{}, internal(err)
		}
		list.Approvals = append(list.Approvals, newApprovalView(fresh, entries))
	}
	return list, nil
}

// listDecided lists a page of the actions whose approval ended with
// status, from the ledger's receipts of that status.
func (s *server) listDecided(r *http.Request, p *identity.Principal, tenant string, status receipt.Status, cursor approvalCursor, limit int) (approvalList, error) {
	ctx := r.Context()
	lq := ledger.Query{TenantID: tenant, AgentID: p.AgentID, Status: string(status), Cursor: cursor.Ledger, Limit: limit}
	recs, next, err := s.querier.ListReceipts(ctx, lq)
	if err != nil {
		if lq.Cursor != "" {
			probe := lq
			probe.Cursor, probe.Limit = "", 1
			if _, _, perr := s.querier.ListReceipts(ctx, probe); perr == nil {
				return approvalList{}, badRequest(`query parameter "cursor" is not valid`)
			}
		}
		return approvalList{}, unavailable("the ledger is unavailable", err)
	}
	list := approvalList{Approvals: []approvalView{}}
	if next != "" {
		list.NextCursor = approvalCursor{Status: statusKey(status), Ledger: next}.encode()
	}
	for _, rec := range recs {
		h, ok := ledger.ParseHeader(rec.Leaf)
		if !ok || !visible(p, h, ok) {
			continue
		}
		entries, err := s.guard.Receipts(ctx, h.ActionID)
		if err != nil {
			return approvalList{}, unavailable("the ledger is unavailable", err)
		}
		st, err := derive(entries)
		if err != nil {
			s.log.WarnContext(ctx, "listing approvals: skipping an action whose receipts are not an approval history",
				slog.String("request_id", stateOf(r).id), slog.String("action_id", h.ActionID), slog.Any("error", err))
			continue
		}
		list.Approvals = append(list.Approvals, newApprovalView(st, entries))
	}
	return list, nil
}

// statusKey returns the query name of an approval status.
func statusKey(s receipt.Status) string {
	for k, v := range approvalStatuses {
		if v == s {
			return k
		}
	}
	return string(s)
}

// approverOf is p as an approver: its user (UserID, else Subject), its
// business groups and API roles, and its tenants.
func approverOf(p *identity.Principal) approval.Approver {
	user := p.UserID
	if user == "" {
		user = p.Subject
	}
	roles := slices.Clone(p.Groups)
	for _, r := range p.Roles {
		if !slices.Contains(roles, string(r)) {
			roles = append(roles, string(r))
		}
	}
	return approval.Approver{UserID: user, Roles: roles, TenantIDs: slices.Clone(p.Tenants)}
}

// decisionRequest is the body of POST /v1/approvals/{id}/decision.
type decisionRequest struct {
	Decision string  `json:"decision"`
	Reason   string  `json:"reason"`
	TOTP     *string `json:"totp"`
}

// decide records the caller's vote on an action held for approval and
// answers the updated view. Approving an action whose requirement asks for
// step-up needs a TOTP code, checked before the vote: a missing, wrong or
// replayed code records nothing. A vote that completes the quorum
// approves the action; the server then executes it (Config.Approved).
func (s *server) decide(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	var req decisionRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	decision := approval.Decision(req.Decision)
	if !decision.Valid() {
		return badRequest(`field "decision" must be "approve" or "reject"`)
	}
	if err := approval.CheckReason(req.Reason); err != nil {
		return badRequest(`field "reason" ` + strings.TrimPrefix(err.Error(), approval.ErrInvalidVote.Error()+": reason "))
	}
	id := r.PathValue("id")
	st, _, err := s.lookupApproval(r.Context(), p, id)
	if err != nil {
		return err
	}
	v := approval.Vote{Approver: approverOf(p), Decision: decision, Reason: req.Reason}
	if decision == approval.Approve && st.Requirement.StepUp {
		v.StepUpMethod = approval.StepUpTOTP
		// Refuse what the vote would be refused for before the code is
		// checked, so a code is not spent on a vote that cannot count.
		if err := st.Check(v, s.now()); err != nil {
			return voteError(err)
		}
		if err := s.verifyStepUp(r.Context(), st.TenantID, v.Approver.UserID, req.TOTP); err != nil {
			return err
		}
	}
	out, err := s.guard.Vote(r.Context(), id, v)
	if err != nil {
		return voteError(err)
	}
	if out.Status == receipt.StatusApproved && s.cfg.Approved != nil {
		s.cfg.Approved(id)
	}
	return s.writeApproval(w, r, p, id)
}

// writeApproval answers the current view of action id.
func (s *server) writeApproval(w http.ResponseWriter, r *http.Request, p *identity.Principal, id string) error {
	st, entries, err := s.lookupApproval(r.Context(), p, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newApprovalView(st, entries))
	return nil
}

// verifyStepUp checks the TOTP code of an approving vote.
func (s *server) verifyStepUp(ctx context.Context, tenant, user string, code *string) error {
	if s.cfg.StepUp == nil {
		return errorf(http.StatusForbidden, codeStepUpRequired, "this action needs step-up, which this server does not offer")
	}
	if code == nil || *code == "" {
		return errorf(http.StatusForbidden, codeStepUpRequired, `approving this action needs a TOTP code in field "totp"`)
	}
	err := s.cfg.StepUp.Verify(ctx, tenant, user, *code)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, stepup.ErrRateLimited):
		return errorf(http.StatusTooManyRequests, codeRateLimited, "too many failed step-up attempts; try again later")
	case errors.Is(err, stepup.ErrReplayed):
		return errorf(http.StatusForbidden, codeCodeReplayed, "the TOTP code was already used")
	case errors.Is(err, stepup.ErrInvalidCode):
		return errorf(http.StatusForbidden, codeInvalidCode, "the TOTP code is not valid")
	case errors.Is(err, stepup.ErrNotEnrolled):
		return errorf(http.StatusForbidden, codeNotEnrolled, "the approver has no second factor enrolled")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return unavailable("the request was cancelled", err)
	}
	return unavailable("step-up verification is unavailable", err)
}

// voteError maps the errors of Guard.Vote and Guard.Cancel to responses.
func voteError(err error) error {
	switch {
	case errors.Is(err, oars.ErrNotFound), errors.Is(err, approval.ErrWrongTenant):
		return notFound("approval not found")
	case errors.Is(err, approval.ErrNotApproval):
		return errorf(http.StatusConflict, codeNotPending, "the action was not held for approval")
	case errors.Is(err, approval.ErrExpired):
		return errorf(http.StatusConflict, codeExpired, "the approval request expired")
	case errors.Is(err, approval.ErrNotPending):
		return errorf(http.StatusConflict, codeNotPending, "the action is no longer pending approval")
	case errors.Is(err, approval.ErrAlreadyVoted):
		return errorf(http.StatusConflict, codeAlreadyVoted, "the approver has already voted on this action")
	case errors.Is(err, approval.ErrSelfApproval):
		return errorf(http.StatusForbidden, codeSelfApproval, "the requester and the acting agent cannot approve their own action")
	case errors.Is(err, approval.ErrNotApprover):
		return errorf(http.StatusForbidden, codeNotApprover, "the caller is not an approver of this action")
	case errors.Is(err, approval.ErrStepUpRequired):
		return errorf(http.StatusForbidden, codeStepUpRequired, "approving this action needs step-up authentication")
	case errors.Is(err, approval.ErrNotRequester):
		return errorf(http.StatusForbidden, codeNotRequester, "only the requester or an admin may cancel this action")
	case errors.Is(err, approval.ErrInvalidVote):
		msg := err.Error()
		if i := strings.LastIndex(msg, approval.ErrInvalidVote.Error()); i >= 0 {
			msg = msg[i+len("approval: "):]
		}
		return badRequest(msg)
	case errors.Is(err, oars.ErrLedger), errors.Is(err, oars.ErrSigning):
		return unavailable("the ledger is unavailable", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return unavailable("the request was cancelled", err)
	}
	return internal(err)
}

// cancelRequest is the body of POST /v1/actions/{id}/cancel.
type cancelRequest struct {
	Reason string `json:"reason"`
}

// cancelAction cancels an action pending approval on behalf of its
// requester (the same user) or an admin. The body is optional.
func (s *server) cancelAction(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	var req cancelRequest
	if r.ContentLength != 0 {
		if err := s.readJSON(w, r, &req); err != nil {
			return err
		}
	}
	if err := approval.CheckReason(req.Reason); err != nil {
		return badRequest(`field "reason" ` + strings.TrimPrefix(err.Error(), approval.ErrInvalidVote.Error()+": reason "))
	}
	id := r.PathValue("id")
	if checkString(id, true, oars.MaxIDLength) != "" {
		return notFound("action not found")
	}
	entries, err := s.guard.Receipts(r.Context(), id)
	switch {
	case errors.Is(err, oars.ErrNotFound):
		return notFound("action not found")
	case err != nil:
		return unavailable("the ledger is unavailable", err)
	}
	if first := entries[0].Receipt; !p.InTenant(first.TenantID) || !p.MaySeeAgent(first.AgentID) {
		return notFound("action not found")
	}
	if _, err := s.guard.Cancel(r.Context(), id, approverOf(p), req.Reason); err != nil {
		return voteError(err)
	}
	return s.writeApproval(w, r, p, id)
}

// enrollment is the answer of POST /v1/approvers/{user_id}/totp.
type enrollment struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

// enrollTOTP enrolls a new TOTP secret for an approver of a tenant the
// admin sees (replacing any earlier one), records an approver.totp_enrolled
// event, and answers the secret once.
func (s *server) enrollTOTP(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	q, err := parseQuery(r, "tenant_id")
	if err != nil {
		return err
	}
	if q.has("tenant_id") {
		if msg := checkString(q.get("tenant_id"), true, oars.MaxIDLength); msg != "" {
			return badRequest(`query parameter "tenant_id" ` + msg)
		}
	}
	tenant, err := listTenant(p, q.get("tenant_id"), q.has("tenant_id"))
	if err != nil {
		return err
	}
	if tenant == "" {
		return badRequest(`query parameter "tenant_id" is required`)
	}
	user := r.PathValue("user_id")
	if msg := checkString(user, true, oars.MaxIDLength); msg != "" {
		return badRequest("the user id " + msg)
	}
	if s.cfg.StepUp == nil {
		return errorf(http.StatusNotImplemented, codeNotImplemented, "this server does not offer step-up")
	}
	secret, url, err := s.cfg.StepUp.Enroll(r.Context(), tenant, user)
	if err != nil {
		return unavailable("enrollment is unavailable", err)
	}
	details, err := json.Marshal(map[string]string{"user_id": user, "method": approval.StepUpTOTP})
	if err != nil {
		return internal(err)
	}
	if _, err := s.guard.RecordEvent(r.Context(), &receipt.Event{
		Event: "approver.totp_enrolled", Actor: p.Subject, TenantID: tenant, Details: details,
	}); err != nil {
		// The secret is not shown: enrolling again replaces it.
		return unavailable("the ledger is unavailable", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, enrollment{Secret: secret, OTPAuthURL: url})
	return nil
}

// now returns the API's clock.
func (s *server) now() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock()
	}
	return time.Now()
}
