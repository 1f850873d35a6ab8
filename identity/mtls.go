package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// CertIdentity maps a TLS client certificate to a workload identity. A
// certificate matches by exactly one of SPIFFEID and Subject.
type CertIdentity struct {
	// SPIFFEID matches a certificate whose leaf has exactly this SPIFFE ID
	// as its only "spiffe" URI SAN, e.g. "spiffe://example.org/ns/billing".
	SPIFFEID string `json:"spiffe_id,omitempty" yaml:"spiffe_id,omitempty"`
	// Subject matches a certificate whose leaf subject is exactly this
	// distinguished name, in the RFC 2253 form Go's pkix.Name.String and
	// "openssl x509 -noout -subject -nameopt RFC2253" print, most
	// specific first: "CN=billing,OU=payments,O=Acme".
	Subject string `json:"subject,omitempty" yaml:"subject,omitempty"`
	// Name is the principal's Subject, checked like a [Token] name.
	Name string `json:"name" yaml:"name"`
	// Roles are the roles the identity holds; at least one, each valid.
	Roles []Role `json:"roles" yaml:"roles"`
	// Tenants are the tenants it may act in and read, as for a [Token].
	Tenants []string `json:"tenants" yaml:"tenants"`
	// AgentID optionally binds the identity to one agent; it requires
	// [RoleAgent].
	AgentID string `json:"agent_id,omitempty" yaml:"agent_id,omitempty"`
	// Kind is the principal's kind; default [KindService].
	Kind Kind `json:"kind,omitempty" yaml:"kind,omitempty"`
}

// CertAuthenticator authenticates requests by their TLS client
// certificate. The TLS layer verifies certificates against the client CA
// (tls.Config ClientCAs with ClientAuth VerifyClientCertIfGiven or
// RequireAndVerifyClientCert); CertAuthenticator only maps a verified
// leaf to its configured identity. It is immutable and safe for
// concurrent use.
type CertAuthenticator struct {
	bySPIFFE  map[string]*CertIdentity
	bySubject map[string]*CertIdentity
}

var _ Authenticator = (*CertAuthenticator)(nil)

// NewCertAuthenticator validates ids and returns an authenticator for
// them. It fails, naming the identity by position and name, when an
// identity sets neither or both of SPIFFEID and Subject, a SPIFFE ID is
// malformed, a SPIFFE ID, subject or name is repeated, or the name,
// roles, tenants, agent id or kind are invalid as for [NewTokenSet]. The
// identities are copied.
func NewCertAuthenticator(ids []CertIdentity) (*CertAuthenticator, error) {
	a := &CertAuthenticator{bySPIFFE: map[string]*CertIdentity{}, bySubject: map[string]*CertIdentity{}}
	names := make(map[string]bool, len(ids))
	for i, id := range ids {
		if err := validName(id.Name); err != nil {
			return nil, fmt.Errorf("identity: cert: identity %d: name %w", i, err)
		}
		if names[id.Name] {
			return nil, fmt.Errorf("identity: cert: identity %d (%s): duplicate name", i, id.Name)
		}
		names[id.Name] = true
		fail := func(format string, args ...any) error {
			return fmt.Errorf("identity: cert: identity %d (%s): %w", i, id.Name, fmt.Errorf(format, args...))
		}
		switch {
		case (id.SPIFFEID == "") == (id.Subject == ""):
			return nil, fail("exactly one of spiffe_id and subject is required")
		case id.SPIFFEID != "":
			if err := validSPIFFEID(id.SPIFFEID); err != nil {
				return nil, fail("spiffe_id %w", err)
			}
			if _, dup := a.bySPIFFE[id.SPIFFEID]; dup {
				return nil, fail("spiffe_id repeated")
			}
		default:
			if err := validID(id.Subject); err != nil {
				return nil, fail("subject %w", err)
			}
			if _, dup := a.bySubject[id.Subject]; dup {
				return nil, fail("subject repeated")
			}
		}
		if err := validRoles(id.Roles); err != nil {
			return nil, fail("roles: %w", err)
		}
		if err := validTenants(id.Tenants); err != nil {
			return nil, fail("tenants: %w", err)
		}
		if id.AgentID != "" {
			if err := validID(id.AgentID); err != nil {
				return nil, fail("agent_id %w", err)
			}
			if !slices.Contains(id.Roles, RoleAgent) {
				return nil, fail("agent_id needs role %q", RoleAgent)
			}
		}
		if id.Kind == "" {
			id.Kind = KindService
		}
		if !id.Kind.Valid() {
			return nil, fail("kind %q is unknown", truncate(string(id.Kind)))
		}
		id.Roles = slices.Clone(id.Roles)
		id.Tenants = slices.Clone(id.Tenants)
		if id.SPIFFEID != "" {
			a.bySPIFFE[id.SPIFFEID] = &id
		} else {
			a.bySubject[id.Subject] = &id
		}
	}
	return a, nil
}

// Authenticate returns the principal of r's verified TLS client
// certificate: the configured identity whose SPIFFEID is the leaf's SPIFFE
// ID, or else whose Subject is the leaf's subject. The principal's Subject
// is the identity's Name; UserID is Name if Kind is [KindUser].
//
// It returns an error wrapping [ErrNoCredentials] when r came without TLS
// or without a client certificate, and [ErrInvalidCredentials] when the
// certificate was not verified by the TLS layer (no verified chain), the
// leaf has several SPIFFE IDs, or no identity matches it.
func (a *CertAuthenticator) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, fmt.Errorf("identity: cert: %w", ErrNoCredentials)
	}
	if len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, fmt.Errorf("identity: cert: %w: client certificate not verified", ErrInvalidCredentials)
	}
	leaf := r.TLS.VerifiedChains[0][0]
	var spiffe []string
	for _, u := range leaf.URIs {
		if u != nil && strings.EqualFold(u.Scheme, "spiffe") {
			spiffe = append(spiffe, u.String())
		}
	}
	if len(spiffe) > 1 {
		return nil, fmt.Errorf("identity: cert: %w: certificate has several SPIFFE IDs", ErrInvalidCredentials)
	}
	var id *CertIdentity
	if len(spiffe) == 1 {
		id = a.bySPIFFE[spiffe[0]]
	}
	if id == nil {
		id = a.bySubject[leaf.Subject.String()]
	}
	if id == nil {
		return nil, fmt.Errorf("identity: cert: %w: certificate identity not configured", ErrInvalidCredentials)
	}
	p := &Principal{
		Subject: id.Name,
		Roles:   slices.Clone(id.Roles),
		Tenants: slices.Clone(id.Tenants),
		AgentID: id.AgentID,
		Kind:    id.Kind,
	}
	if id.Kind == KindUser {
		p.UserID = id.Name
	}
	return p, nil
}

// validSPIFFEID checks a SPIFFE ID as the SPIFFE ID specification
// defines it: "spiffe://", a trust domain of lowercase letters, digits,
// ".", "-" and "_", and an optional path of non-empty segments of
// letters, digits, ".", "-" and "_", none "." or "..".
func validSPIFFEID(id string) error {
	const max = 2048
	if len(id) > max {
		return fmt.Errorf("is longer than %d bytes", max)
	}
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return errors.New(`must start with "spiffe://"`)
	}
	td, path, hasPath := strings.Cut(rest, "/")
	if td == "" {
		return errors.New("has no trust domain")
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return errors.New("trust domain must be lowercase letters, digits and . - _")
		}
	}
	if !hasPath {
		return nil
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errors.New("path has an empty, . or .. segment")
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return errors.New("path must be letters, digits and . - _")
			}
		}
	}
	return nil
}
