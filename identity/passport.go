package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/oarsdev/oars/internal/strictjson"
	"github.com/oarsdev/oars/internal/textcheck"
)

// Agent passports follow the Open Agent Passport (OAP 1.0): one passport
// per agent of a tenant says who owns the agent, whether it may act at all
// (its [PassportStatus]), how well its owner was verified (the assurance
// level) and what it may do (its [Capability] values with their limits).
// OARS keeps the fields a relying party decides with; OAP's registry
// fields (passport_id, kind, template ids, regions, metadata) are not
// stored. Status changes follow OAP's state machine (see
// [CanTransition]): a suspended or revoked agent is refused before any
// policy runs, which makes suspension the kill switch of an agent.

// Errors of passports and passport stores. Test for them with errors.Is;
// messages name the offending field, never its value.
var (
	// ErrPassportNotFound: no passport is stored for the tenant and agent.
	ErrPassportNotFound = errors.New("identity: passport not found")
	// ErrInvalidPassport: the passport is malformed (a missing or invalid
	// field, unknown JSON members, input that is not strict JSON).
	ErrInvalidPassport = errors.New("identity: invalid passport")
	// ErrPassportConflict: the passport changed since the version the
	// caller read (optimistic concurrency), or it already exists when the
	// caller creates it (Version 0).
	ErrPassportConflict = errors.New("identity: passport version conflict")
	// ErrPassportTransition: the status change is not allowed by the OAP
	// state machine (for example out of revoked).
	ErrPassportTransition = errors.New("identity: passport status transition not allowed")
)

// PassportStatus is the status of a passport, as in OAP.
type PassportStatus string

// The statuses of a passport.
const (
	// PassportDraft: created, not yet usable.
	PassportDraft PassportStatus = "draft"
	// PassportActive: the agent may act, subject to policy.
	PassportActive PassportStatus = "active"
	// PassportSuspended: the agent may not act until resumed.
	PassportSuspended PassportStatus = "suspended"
	// PassportRevoked: the agent may never act again (terminal).
	PassportRevoked PassportStatus = "revoked"
)

// Valid reports whether s is one of the statuses of this package.
func (s PassportStatus) Valid() bool {
	switch s {
	case PassportDraft, PassportActive, PassportSuspended, PassportRevoked:
		return true
	}
	return false
}

// CanTransition reports whether a passport may go from status from to
// status to, following OAP's state machine: draft→active,
// active→suspended, suspended→active, and draft, active or suspended →
// revoked. Revoked is terminal. Staying in the same status is not a
// transition and reports false.
func CanTransition(from, to PassportStatus) bool {
	switch to {
	case PassportActive:
		return from == PassportDraft || from == PassportSuspended
	case PassportSuspended:
		return from == PassportActive
	case PassportRevoked:
		return from == PassportDraft || from == PassportActive || from == PassportSuspended
	}
	return false
}

// AssuranceLevels returns the OAP assurance levels, weakest first: L0, L1,
// L2, L3, L4KYC, L4FIN.
func AssuranceLevels() []string {
	return []string{"L0", "L1", "L2", "L3", "L4KYC", "L4FIN"}
}

// Limits on passport fields.
const (
	// MaxCapabilities bounds the capabilities of one passport.
	MaxCapabilities = 256
	// MaxCapabilityIDLength bounds a capability id.
	MaxCapabilityIDLength = 128
	// MaxLimitsBytes bounds the JSON of one capability's limits.
	MaxLimitsBytes = 16 << 10
)

// capabilityID is OAP's capability id pattern.
var capabilityID = regexp.MustCompile(`^[a-z0-9]+(\.[a-z0-9]+)*$`)

// Capability is one thing an agent may do, named by a dot-separated id
// such as "finance.payment.refund", with its limits: an object such as
// {"max_per_action":5000,"daily_cap":50000,"currencies":["EUR"]} or, in
// OAP's form, {"currency_limits":{"USD":{"max_per_tx":5000,"daily_cap":50000}}}
// (amounts are integers in minor units). The members are those of
// [CapabilityLimits]; unknown members make the passport invalid.
//
// The Guard (oars.WithCounters) enforces the limits of the capability an
// action falls under (by default "<tool_id>.<operation>"): it reads the
// amount and currency from the action's input, refuses an amount over
// the maximum or a currency not allowed, and consumes the amount from the
// agent's daily counter in a [CounterStore], atomically across replicas.
type Capability struct {
	// ID matches ^[a-z0-9]+(\.[a-z0-9]+)*$.
	ID string `json:"id"`
	// Limits is a JSON object following the schema of
	// [CapabilityLimits], or empty for none. It is stored canonicalized;
	// [Capability.ParseLimits] decodes it.
	Limits json.RawMessage `json:"limits,omitempty"`
}

// Passport is the OAP passport of one agent of a tenant. The zero value is
// not valid; see [Passport.Validate]. Its JSON form has snake_case members
// and is decoded strictly by [ParsePassport].
type Passport struct {
	// AgentID and TenantID identify the agent; OwnerID is who answers
	// for it (for example "org_12345678"). All three are required.
	AgentID  string `json:"agent_id"`
	TenantID string `json:"tenant_id"`
	OwnerID  string `json:"owner_id"`
	// Status is the passport's status; required.
	Status PassportStatus `json:"status"`
	// AssuranceLevel is one of [AssuranceLevels]; required.
	AssuranceLevel string `json:"assurance_level"`
	// Capabilities are what the agent may do; ids are unique.
	Capabilities []Capability `json:"capabilities"`
	// CreatedAt and UpdatedAt are set by the store.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version counts the stored changes of the passport: 0 for a
	// passport never stored, 1 after creation, one more after each
	// change. Writers send the version they read (optimistic
	// concurrency).
	Version int64 `json:"version"`
}

// CapabilityIDs returns the ids of p's capabilities, in order.
func (p *Passport) CapabilityIDs() []string {
	ids := make([]string, len(p.Capabilities))
	for i, c := range p.Capabilities {
		ids[i] = c.ID
	}
	return ids
}

// HasCapability reports whether p grants capability id.
func (p *Passport) HasCapability(id string) bool {
	return slices.ContainsFunc(p.Capabilities, func(c Capability) bool { return c.ID == id })
}

// Clone returns a deep copy of p.
func (p *Passport) Clone() *Passport {
	c := *p
	c.Capabilities = make([]Capability, len(p.Capabilities))
	for i, cp := range p.Capabilities {
		c.Capabilities[i] = Capability{ID: cp.ID, Limits: slices.Clone(cp.Limits)}
	}
	return &c
}

// Validate checks p: required identifiers of at most [MaxIDLength] bytes
// without control characters, a valid status and assurance level, and
// capabilities with OAP ids, no duplicates, and limits that are strict
// JSON objects. It returns an error wrapping [ErrInvalidPassport] that
// names the first invalid field.
func (p *Passport) Validate() error {
	if p == nil {
		return fmt.Errorf("%w: nil passport", ErrInvalidPassport)
	}
	for _, f := range []struct{ name, v string }{
		{"agent_id", p.AgentID}, {"tenant_id", p.TenantID}, {"owner_id", p.OwnerID},
	} {
		if msg := checkID(f.v); msg != "" {
			return fmt.Errorf("%w: %s %s", ErrInvalidPassport, f.name, msg)
		}
	}
	if !p.Status.Valid() {
		return fmt.Errorf("%w: status must be one of draft, active, suspended, revoked", ErrInvalidPassport)
	}
	if !slices.Contains(AssuranceLevels(), p.AssuranceLevel) {
		return fmt.Errorf("%w: assurance_level must be one of %s", ErrInvalidPassport, strings.Join(AssuranceLevels(), ", "))
	}
	if len(p.Capabilities) > MaxCapabilities {
		return fmt.Errorf("%w: more than %d capabilities", ErrInvalidPassport, MaxCapabilities)
	}
	seen := make(map[string]bool, len(p.Capabilities))
	for i, c := range p.Capabilities {
		if len(c.ID) > MaxCapabilityIDLength || !capabilityID.MatchString(c.ID) {
			return fmt.Errorf("%w: capabilities[%d].id must match ^[a-z0-9]+(\\.[a-z0-9]+)*$ (at most %d bytes)", ErrInvalidPassport, i, MaxCapabilityIDLength)
		}
		if seen[c.ID] {
			return fmt.Errorf("%w: capabilities[%d].id repeats an earlier capability", ErrInvalidPassport, i)
		}
		seen[c.ID] = true
		// parseLimits checks the size, strict JSON and the schema.
		if _, msg := parseLimits(c.Limits); msg != "" {
			return fmt.Errorf("%w: capabilities[%d].limits: %s", ErrInvalidPassport, i, msg)
		}
	}
	if p.Version < 0 {
		return fmt.Errorf("%w: negative version", ErrInvalidPassport)
	}
	return nil
}

func checkID(v string) string {
	return textcheck.Problem(v, true, MaxIDLength)
}

// ParsePassport decodes and validates a passport's JSON. The input must be
// strict JSON (no duplicate keys, valid UTF-8) with only the members of
// [Passport]; capabilities' limits are canonicalized (RFC 8785). Errors
// wrap [ErrInvalidPassport] and never echo the input.
func ParsePassport(data []byte) (*Passport, error) {
	if err := strictjson.Check(data); err != nil {
		return nil, fmt.Errorf("%w: not strict JSON", ErrInvalidPassport)
	}
	var p Passport
	if err := jsonv2.Unmarshal(data, &p, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidPassport, decodeField(err))
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := p.canonicalizeLimits(); err != nil {
		return nil, err
	}
	return &p, nil
}

// decodeField describes a decoding error by the member it concerns.
func decodeField(err error) string {
	var se *jsonv2.SemanticError
	if errors.As(err, &se) && se.JSONPointer != "" {
		return "bad or unknown member " + strings.TrimPrefix(string(se.JSONPointer), "/")
	}
	return "malformed passport"
}

func (p *Passport) canonicalizeLimits() error {
	for i := range p.Capabilities {
		if len(p.Capabilities[i].Limits) == 0 {
			p.Capabilities[i].Limits = nil
			continue
		}
		c, err := strictjson.Canonicalize(p.Capabilities[i].Limits)
		if err != nil {
			return fmt.Errorf("%w: capabilities[%d].limits: not canonicalizable", ErrInvalidPassport, i)
		}
		p.Capabilities[i].Limits = c
	}
	return nil
}

// MarshalPassport returns the JSON form of a valid p, with capabilities as
// an array (never null) and limits canonicalized.
func MarshalPassport(p *Passport) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := p.Clone()
	if err := c.canonicalizeLimits(); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	b, err := jsonv2.Marshal(c, jsonv2.FormatNilSliceAsNull(false))
	if err != nil {
		return nil, fmt.Errorf("identity: marshal passport: %w", err)
	}
	return b, nil
}

// PassportStore keeps passports. Implementations must be safe for
// concurrent use; the SQLite and PostgreSQL stores of this module
// implement it.
type PassportStore interface {
	// GetPassport returns the passport of agent agentID of tenant
	// tenantID, a copy the caller may keep, or an error wrapping
	// [ErrPassportNotFound].
	GetPassport(ctx context.Context, tenantID, agentID string) (*Passport, error)
	// PutPassport creates (p.Version 0) or replaces (p.Version the
	// version read) the passport of p.TenantID and p.AgentID. It fails
	// with [ErrInvalidPassport] if p is invalid, [ErrPassportConflict] if
	// the stored version differs (or, for a creation, a passport exists),
	// and [ErrPassportTransition] if p.Status differs from the stored
	// status and [CanTransition] refuses the change. On success it sets
	// p.Version, p.CreatedAt and p.UpdatedAt to the stored values.
	PutPassport(ctx context.Context, p *Passport) error
	// SetPassportStatus changes the status of a stored passport and
	// returns it as stored. Setting the status it already has changes
	// nothing and succeeds. It fails with [ErrPassportNotFound] or
	// [ErrPassportTransition].
	SetPassportStatus(ctx context.Context, tenantID, agentID string, status PassportStatus) (*Passport, error)
}

// PreparePut checks a PutPassport of p over the stored passport old (nil
// when none is stored) and returns the passport to store at now: a copy
// of p with Version, CreatedAt and UpdatedAt set; p is not changed. Stores
// call it inside their transaction; it returns the errors documented on
// [PassportStore.PutPassport].
func PreparePut(old, p *Passport, now time.Time) (*Passport, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	next := p.Clone()
	switch {
	case old == nil && p.Version != 0:
		return nil, fmt.Errorf("%w: no stored passport has version %d", ErrPassportConflict, p.Version)
	case old == nil:
		next.CreatedAt = now.UTC()
	case p.Version != old.Version:
		return nil, fmt.Errorf("%w: stored version is %d, not %d", ErrPassportConflict, old.Version, p.Version)
	default:
		if old.Status != p.Status && !CanTransition(old.Status, p.Status) {
			return nil, fmt.Errorf("%w: %s to %s", ErrPassportTransition, old.Status, p.Status)
		}
		next.CreatedAt = old.CreatedAt
	}
	next.UpdatedAt = now.UTC()
	next.Version++
	return next, nil
}

// PrepareStatus checks a change of the status of old (the stored
// passport, nil when none is stored) to status and returns the passport
// to store at now and true, or old itself and false when it already has
// that status. It returns the errors documented on
// [PassportStore.SetPassportStatus].
func PrepareStatus(old *Passport, status PassportStatus, now time.Time) (*Passport, bool, error) {
	if old == nil {
		return nil, false, ErrPassportNotFound
	}
	if !status.Valid() {
		return nil, false, fmt.Errorf("%w: unknown status", ErrPassportTransition)
	}
	if old.Status == status {
		return old, false, nil
	}
	if !CanTransition(old.Status, status) {
		return nil, false, fmt.Errorf("%w: %s to %s", ErrPassportTransition, old.Status, status)
	}
	p := old.Clone()
	p.Status = status
	p.UpdatedAt = now.UTC()
	p.Version++
	return p, true, nil
}

// MemPassportStore is a [PassportStore] in memory, for tests and
// single-process hosts. The zero value is empty and ready to use; it is
// safe for concurrent use.
type MemPassportStore struct {
	// Clock, if set, stamps created_at and updated_at; nil means time.Now.
	Clock func() time.Time

	mu sync.Mutex
	m  map[[2]string]*Passport
}

var _ PassportStore = (*MemPassportStore)(nil)

func (s *MemPassportStore) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

// GetPassport implements [PassportStore].
func (s *MemPassportStore) GetPassport(ctx context.Context, tenantID, agentID string) (*Passport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[[2]string{tenantID, agentID}]
	if !ok {
		return nil, fmt.Errorf("identity: get passport: %w", ErrPassportNotFound)
	}
	return p.Clone(), nil
}

// PutPassport implements [PassportStore].
func (s *MemPassportStore) PutPassport(ctx context.Context, p *Passport) error {
	if p == nil {
		return fmt.Errorf("identity: put passport: %w: nil passport", ErrInvalidPassport)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{p.TenantID, p.AgentID}
	next, err := PreparePut(s.m[key], p, s.now())
	if err != nil {
		return fmt.Errorf("identity: put passport: %w", err)
	}
	if err := next.canonicalizeLimits(); err != nil {
		return fmt.Errorf("identity: put passport: %w", err)
	}
	if s.m == nil {
		s.m = make(map[[2]string]*Passport)
	}
	s.m[key] = next
	p.Version, p.CreatedAt, p.UpdatedAt = next.Version, next.CreatedAt, next.UpdatedAt
	return nil
}

// SetPassportStatus implements [PassportStore].
func (s *MemPassportStore) SetPassportStatus(ctx context.Context, tenantID, agentID string, status PassportStatus) (*Passport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{tenantID, agentID}
	next, _, err := PrepareStatus(s.m[key], status, s.now())
	if err != nil {
		return nil, fmt.Errorf("identity: set passport status: %w", err)
	}
	s.m[key] = next
	return next.Clone(), nil
}

// PassportChange announces that the passport of an agent changed, for
// example through another server replica (see [PassportCache.Follow]).
type PassportChange struct {
	TenantID string
	AgentID  string
	// Status is the new status, or empty when unknown.
	Status PassportStatus
}

// DefaultPassportTTL is how long a [PassportCache] keeps a lookup when
// its TTL is 0: OAP's bound on the propagation of a suspension.
const DefaultPassportTTL = 30 * time.Second

// PassportCache is a [PassportStore] that caches the lookups of another
// one for a TTL, including the absence of a passport. Writes through the
// cache go to the store and invalidate the entry; changes made elsewhere
// (another replica) are seen when the entry expires, or at once when
// [PassportCache.Invalidate] is called for them, which
// [PassportCache.Follow] does for a stream of change notifications. It is
// safe for concurrent use.
type PassportCache struct {
	store PassportStore
	ttl   time.Duration
	clock func() time.Time

	mu      sync.Mutex
	gen     uint64 // incremented by every invalidation
	entries map[[2]string]cacheEntry
}

type cacheEntry struct {
	p       *Passport // nil: no passport stored
	expires time.Time
}

var _ PassportStore = (*PassportCache)(nil)

// NewPassportCache returns a cache over store keeping lookups for ttl (0
// means [DefaultPassportTTL]; negative disables caching), timed by clock
// (nil means time.Now).
func NewPassportCache(store PassportStore, ttl time.Duration, clock func() time.Time) (*PassportCache, error) {
	if store == nil {
		return nil, errors.New("identity: new passport cache: nil store")
	}
	if ttl == 0 {
		ttl = DefaultPassportTTL
	}
	if clock == nil {
		clock = time.Now
	}
	return &PassportCache{store: store, ttl: ttl, clock: clock, entries: make(map[[2]string]cacheEntry)}, nil
}

// Passport returns the passport of agent agentID of tenant tenantID, from
// the cache when fresh, or an error wrapping [ErrPassportNotFound]. Store
// errors are returned (wrapped) and not cached. It is what an
// oars.WithPassports Guard option takes.
func (c *PassportCache) Passport(ctx context.Context, tenantID, agentID string) (*Passport, error) {
	return c.GetPassport(ctx, tenantID, agentID)
}

// GetPassport implements [PassportStore] through the cache.
func (c *PassportCache) GetPassport(ctx context.Context, tenantID, agentID string) (*Passport, error) {
	key := [2]string{tenantID, agentID}
	c.mu.Lock()
	e, ok := c.entries[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && c.clock().Before(e.expires) {
		if e.p == nil {
			return nil, fmt.Errorf("identity: get passport: %w", ErrPassportNotFound)
		}
		return e.p.Clone(), nil
	}
	p, err := c.store.GetPassport(ctx, tenantID, agentID)
	if err != nil && !errors.Is(err, ErrPassportNotFound) {
		return nil, err
	}
	if c.ttl > 0 {
		c.mu.Lock()
		// An invalidation while the store was read may concern what it
		// returned: keep it only if none happened.
		if c.gen == gen {
			ne := cacheEntry{expires: c.clock().Add(c.ttl)}
			if p != nil {
				ne.p = p.Clone()
			}
			c.entries[key] = ne
		}
		c.mu.Unlock()
	}
	return p, err
}

// PutPassport implements [PassportStore]: it writes to the store and
// invalidates the entry.
func (c *PassportCache) PutPassport(ctx context.Context, p *Passport) error {
	if p == nil {
		return fmt.Errorf("identity: put passport: %w: nil passport", ErrInvalidPassport)
	}
	defer c.Invalidate(p.TenantID, p.AgentID)
	return c.store.PutPassport(ctx, p)
}

// SetPassportStatus implements [PassportStore]: it writes to the store
// and invalidates the entry.
func (c *PassportCache) SetPassportStatus(ctx context.Context, tenantID, agentID string, status PassportStatus) (*Passport, error) {
	defer c.Invalidate(tenantID, agentID)
	return c.store.SetPassportStatus(ctx, tenantID, agentID, status)
}

// Invalidate drops the cached lookup of one agent.
func (c *PassportCache) Invalidate(tenantID, agentID string) {
	c.mu.Lock()
	c.gen++
	delete(c.entries, [2]string{tenantID, agentID})
	c.mu.Unlock()
}

// InvalidateAll drops every cached lookup.
func (c *PassportCache) InvalidateAll() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// Len returns the number of cached lookups, fresh or expired.
func (c *PassportCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// WatchFunc starts a watch of passport changes: it returns a channel that
// receives every change committed after it returned, and is closed when
// the watch ends (ctx done, connection lost); it must close once ctx is
// done. PostgreSQL's
// (*postgres.Store).WatchPassports is one.
type WatchFunc func(ctx context.Context) (<-chan PassportChange, error)

// Follow keeps c in step with changes made elsewhere until ctx ends: it
// starts watch, invalidates every cached lookup (changes made before the
// watch started are not announced), then invalidates the entry of each
// announced change (everything for a change without an agent). When the watch fails or its channel closes, it
// invalidates everything and starts it again after retry (doubling up to
// 30 times retry while it keeps failing; 0 means one second). It returns
// ctx's error. onError, if not nil, is told of each failure.
func (c *PassportCache) Follow(ctx context.Context, watch WatchFunc, retry time.Duration, onError func(error)) error {
	if retry <= 0 {
		retry = time.Second
	}
	wait := retry
	for {
		ch, err := watch(ctx)
		c.InvalidateAll()
		if err == nil {
			wait = retry
			for change := range ch {
				if change.AgentID == "" {
					c.InvalidateAll()
					continue
				}
				c.Invalidate(change.TenantID, change.AgentID)
			}
			c.InvalidateAll()
			if ctx.Err() == nil {
				err = errors.New("identity: passport watch ended")
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if onError != nil {
			onError(err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 30*retry)
	}
}
