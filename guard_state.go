package oars

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// idempotencyNamespace is the UUIDv5 namespace of action ids derived from
// idempotency keys.
var idempotencyNamespace = uuid.MustParse("6f0b3c1e-2d4a-4e8b-9a57-0c1d2e3f4a5b")

// IdempotentActionID returns the action id that [Guard] derives from a
// tenant and an idempotency key: a UUIDv5, so the key itself is not
// recorded anywhere.
func IdempotentActionID(tenantID, key string) string {
	return uuid.NewSHA1(idempotencyNamespace, []byte(tenantID+"\x00"+key)).String()
}

// idempotent handles Action.IdempotencyKey. It returns the recorded
// outcome for a replay, or an unlock function to call when the new action
// is recorded.
func (g *Guard) idempotent(ctx context.Context, a *Action) (*Outcome, func(), error) {
	if a == nil || a.IdempotencyKey == "" {
		return nil, func() {}, nil
	}
	if a.ID != "" {
		return nil, nil, fmt.Errorf("%w: id and idempotency key are mutually exclusive", ErrInvalidAction)
	}
	if err := checkField(a.IdempotencyKey, true, MaxIDLength); err != nil {
		return nil, nil, fmt.Errorf("%w: idempotency key %s", ErrInvalidAction, err)
	}
	if err := checkField(a.TenantID, true, MaxIDLength); err != nil {
		return nil, nil, fmt.Errorf("%w: tenant_id %s", ErrInvalidAction, err)
	}
	id := IdempotentActionID(a.TenantID, a.IdempotencyKey)
	unlock := g.keyLocks.lock(id)
	entries, err := g.Receipts(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		a.ID = id
		return nil, unlock, nil
	case err != nil:
		unlock()
		return nil, nil, err
	}
	defer unlock()
	first := entries[0].Receipt
	digest, err := inputDigest(a.Input)
	if err != nil {
		return nil, nil, err
	}
	if first.TenantID != a.TenantID || first.AgentID != a.AgentID ||
		first.Principal.UserID != a.Principal.UserID || first.Resource != a.Resource ||
		first.InputDigest != digest {
		return nil, nil, ErrIdempotencyConflict
	}
	a.ID = id
	last := entries[len(entries)-1].Receipt
	return &Outcome{ActionID: id, Status: last.Status, Receipts: entries, Replayed: true}, nil, nil
}

// Receipts returns the recorded receipts of an action in seq order, or an
// error wrapping [ErrNotFound]. The receipts are read from the ledger's
// store as recorded; verify them with a receipt.Verifier where the store is
// not trusted.
func (g *Guard) Receipts(ctx context.Context, actionID string) ([]Entry, error) {
	recs, err := g.querier.ActionReceipts(ctx, actionID)
	if err != nil {
		return nil, fmt.Errorf("oars: receipts: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("oars: receipts of action: %w", ErrNotFound)
	}
	entries := make([]Entry, len(recs))
	for i, rec := range recs {
		r := new(receipt.Receipt)
		if err := json.Unmarshal(rec.Leaf, r); err != nil {
			return nil, fmt.Errorf("oars: receipts: entry %d: %w", rec.Index, err)
		}
		entries[i] = Entry{Receipt: r, Bytes: rec.Leaf, Index: rec.Index}
	}
	return entries, nil
}

// SetPolicies replaces the policy set in force after recording a signed
// policy.reloaded event (actor, old and new set digests and the policies
// in the new set) in the ledger. If the event cannot be recorded the old
// set stays in force. Decisions already under way finish with the set
// they started with.
func (g *Guard) SetPolicies(ctx context.Context, s *policy.Set, actor string) error {
	if s == nil {
		return errors.New("oars: set policies: nil policy set")
	}
	if err := checkField(actor, true, MaxIDLength); err != nil {
		return fmt.Errorf("oars: set policies: actor %w", err)
	}
	type pol struct {
		ID      string `json:"id"`
		Version string `json:"version"`
		Digest  string `json:"digest"`
		Mode    string `json:"mode"`
	}
	details := struct {
		PreviousDigest string `json:"previous_digest"`
		Digest         string `json:"digest"`
		ID             string `json:"id"`
		Version        string `json:"version"`
		Policies       []pol  `json:"policies"`
	}{Digest: s.Digest(), ID: s.ID(), Version: s.Version()}
	if old := g.policies.Load(); old != nil {
		details.PreviousDigest = old.Digest()
	}
	for _, p := range s.Policies() {
		details.Policies = append(details.Policies, pol{ID: p.ID, Version: p.Version, Digest: p.Digest(), Mode: string(p.Mode)})
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("oars: set policies: %w", err)
	}
	if _, err := g.RecordEvent(ctx, &receipt.Event{Event: "policy.reloaded", Actor: actor, Details: raw}); err != nil {
		return fmt.Errorf("oars: set policies: %w", err)
	}
	g.policies.Store(s)
	return nil
}

// RecordEvent signs e (filling in spec, event id and issue time when they
// are empty) and appends it to the ledger. Use it to record changes to
// what governs actions: keys rotated, tokens granted, settings changed.
func (g *Guard) RecordEvent(ctx context.Context, e *receipt.Event) (Entry, error) {
	if e == nil {
		return Entry{}, errors.New("oars: record event: nil event")
	}
	if e.Spec == "" {
		e.Spec = receipt.EventSpec
	}
	if e.EventID == "" {
		e.EventID = g.cfg.newID()
	}
	if e.IssuedAt.IsZero() {
		e.IssuedAt = g.cfg.clock().UTC()
	}
	signed, err := receipt.SignEvent(ctx, g.keys.Active(), e)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrSigning, err)
	}
	idx, err := g.ledger.Append(ctx, signed)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrLedger, err)
	}
	return Entry{Bytes: signed, Index: idx}, nil
}

// matchedRuleNames returns the names of matched rules as written into
// receipts.
func matchedRuleNames(ms []policy.Match) []string {
	if len(ms) == 0 {
		return nil
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = policy.MatchedRuleName(m)
	}
	return slices.Clip(names)
}

// inputDigest returns the [receipt.Digest] of the canonical form of an
// action's input ({} when empty), or an error wrapping [ErrInvalidAction].
func inputDigest(input json.RawMessage) (string, error) {
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	digest, err := receipt.DigestJSON(input)
	if err != nil {
		return "", fmt.Errorf("%w: input: %w", ErrInvalidAction, err)
	}
	return digest, nil
}
