package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/policy"
)

// health answers 200 while the process serves HTTP.
func (s *server) health(w http.ResponseWriter, _ *http.Request, _ *identity.Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyTimeout bounds the readiness probe.
const readyTimeout = 5 * time.Second

// ready runs the readiness probe: 200, or 503 naming only the class of the
// probe's error (timeout, cancelled, error); the error itself is logged.
func (s *server) ready(w http.ResponseWriter, r *http.Request, _ *identity.Principal) error {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			return unavailable("not ready: "+oars.ErrorClass(err), err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// serveMetrics serves cfg.Registry in the Prometheus exposition format.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *identity.Principal) error {
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}

// The OAP assurance levels (OAP 1.0 passport schema).
var assuranceLevels = []string{"L0", "L1", "L2", "L3", "L4KYC", "L4FIN"}

// discoveryDoc is the OAP well-known discovery document (OAP 1.0 §3.3).
type discoveryDoc struct {
	OAPVersion               string   `json:"oap_version"`
	AuthorizationEndpoint    string   `json:"authorization_endpoint"`
	PassportEndpoint         string   `json:"passport_endpoint"`
	PolicyEndpoint           string   `json:"policy_endpoint"`
	DecisionEndpoint         string   `json:"decision_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	SupportedCapabilities    []string `json:"supported_capabilities"`
	SupportedAssuranceLevels []string `json:"supported_assurance_levels"`
}

// hostPattern is a Host header safe to build URLs from: a DNS name or IPv4
// address, or a bracketed IPv6 address, and an optional port.
var hostPattern = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$`)

// discovery serves the OAP discovery document at both /.well-known/oap and
// /.well-known/oap/.
func (s *server) discovery(w http.ResponseWriter, r *http.Request, _ *identity.Principal) error {
	base := s.baseURL
	if base == "" {
		if !hostPattern.MatchString(r.Host) {
			return badRequest("the Host header is not a valid host")
		}
		base = "https://" + strings.ToLower(r.Host)
	}
	doc := discoveryDoc{
		OAPVersion:               "1.0",
		AuthorizationEndpoint:    base + "/v1/authorizations/{agent_id}",
		PassportEndpoint:         base + "/v1/passports/{agent_id}",
		PolicyEndpoint:           base + "/v1/policies/{policy_name}",
		DecisionEndpoint:         base + "/v1/receipts/{decision_id}",
		JWKSURI:                  base + "/.well-known/oap/jwks.json",
		SupportedCapabilities:    append([]string{}, s.guard.Policies().Capabilities()...),
		SupportedAssuranceLevels: assuranceLevels,
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// jwks serves the receipt keys, current and retired, as a JWK Set.
func (s *server) jwks(w http.ResponseWriter, _ *http.Request, _ *identity.Principal) error {
	data, err := s.cfg.Keys.MarshalJWKS()
	if err != nil {
		return internal(err)
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeRaw(w, "application/json", data)
	return nil
}

// policySetView is the answer of GET /v1/policies and the policy part of
// the answer of a reload.
type policySetView struct {
	ID       string       `json:"id"`
	Version  string       `json:"version"`
	Digest   string       `json:"digest"`
	Policies []policyView `json:"policies"`
}

type policyView struct {
	ID          string     `json:"id"`
	Version     string     `json:"version"`
	Digest      string     `json:"digest"`
	Mode        string     `json:"mode"`
	Description string     `json:"description"`
	Tenants     []string   `json:"tenants"`
	Rules       []ruleView `json:"rules"`
}

type ruleView struct {
	ID     string `json:"id"`
	Effect string `json:"effect"`
	Reason string `json:"reason"`
}

func viewPolicies(set *policy.Set) policySetView {
	v := policySetView{ID: set.ID(), Version: set.Version(), Digest: set.Digest(), Policies: []policyView{}}
	for _, p := range set.Policies() {
		v.Policies = append(v.Policies, viewPolicy(p))
	}
	return v
}

func viewPolicy(p *policy.Policy) policyView {
	pv := policyView{
		ID: p.ID, Version: p.Version, Digest: p.Digest(), Mode: string(p.Mode),
		Description: p.Description, Tenants: append([]string{}, p.Tenants...), Rules: []ruleView{},
	}
	for _, rule := range p.Rules {
		pv.Rules = append(pv.Rules, ruleView{ID: rule.ID, Effect: string(rule.Effect), Reason: rule.Reason})
	}
	return pv
}

// getPolicy describes one policy in force by id (the OAP discovery
// document's policy_endpoint).
func (s *server) getPolicy(w http.ResponseWriter, r *http.Request, _ *identity.Principal) error {
	name := r.PathValue("name")
	for _, p := range s.guard.Policies().Policies() {
		if p.ID == name {
			writeJSON(w, http.StatusOK, viewPolicy(p))
			return nil
		}
	}
	return notFound("policy not found")
}

// truncateUTF8 shortens s to at most max bytes without splitting a
// character, marking the cut with "…".
func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// getPolicies describes the policy set in force.
func (s *server) getPolicies(w http.ResponseWriter, _ *http.Request, _ *identity.Principal) error {
	writeJSON(w, http.StatusOK, viewPolicies(s.guard.Policies()))
	return nil
}

// reloadResponse is the answer of POST /v1/policies/reload.
type reloadResponse struct {
	PreviousDigest string `json:"previous_digest"`
	policySetView
}

// maxPolicyErrorLen bounds the policy error message sent back.
const maxPolicyErrorLen = 4096

// reloadPolicies loads the policies again and, if they are valid, records
// a policy.reloaded event naming the caller and puts them in force. Invalid
// policies are 422 with the loader's message (file, line, rule: no
// secrets); the old set keeps deciding.
func (s *server) reloadPolicies(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	if r.ContentLength != 0 {
		var empty struct{}
		if err := s.readJSON(w, r, &empty); err != nil {
			return err
		}
	}
	if s.cfg.ReloadPolicies == nil {
		return errorf(http.StatusNotImplemented, codeNotImplemented, "policy reload is not configured")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	set, err := s.cfg.ReloadPolicies(r.Context())
	if err != nil || set == nil {
		msg := "the policy loader returned no policies"
		if err != nil {
			msg = err.Error()
		}
		msg = truncateUTF8(msg, maxPolicyErrorLen)
		s.log.WarnContext(r.Context(), "policy reload refused",
			slog.String("request_id", stateOf(r).id), slog.String("subject", p.Subject), slog.String("error", msg))
		return errorf(http.StatusUnprocessableEntity, codeInvalidPolicy, msg)
	}
	previous := s.guard.Policies().Digest()
	if err := s.guard.SetPolicies(r.Context(), set, p.Subject); err != nil {
		return unavailable("the policy change could not be recorded", err)
	}
	s.log.InfoContext(r.Context(), "policies reloaded",
		slog.String("request_id", stateOf(r).id), slog.String("subject", p.Subject),
		slog.String("previous_digest", previous), slog.String("digest", set.Digest()))
	writeJSON(w, http.StatusOK, reloadResponse{PreviousDigest: previous, policySetView: viewPolicies(set)})
	return nil
}
