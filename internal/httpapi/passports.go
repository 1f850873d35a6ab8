package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/receipt"
)

// Error codes of the passport routes (OAP error enum).
const (
	codeConflict         = "conflict"
	codeInvalidPassport  = "invalid_passport"
	codePassportNotFound = "passport_not_found"
)

// Events recorded by the passport routes.
const (
	eventPassportUpdated   = "passport.updated"
	eventPassportSuspended = "passport.suspended"
	eventPassportResumed   = "passport.resumed"
)

// maxPassportReason bounds the reason of a suspension or resumption.
const maxPassportReason = 1024

// passportTenant returns the tenant a passport route of p concerns: the
// one named (404 if p may not see it), or p's only tenant.
func passportTenant(p *identity.Principal, named string, given bool) (string, error) {
	if given {
		if msg := checkString(named, true, oars.MaxIDLength); msg != "" {
			return "", badRequest(`the tenant id ` + msg)
		}
	}
	tenant, err := listTenant(p, named, given)
	if err != nil {
		return "", err
	}
	if tenant == "" {
		return "", badRequest(`query parameter "tenant_id" is required`)
	}
	return tenant, nil
}

// passportTarget returns the tenant (query parameter tenant_id, see
// passportTenant) and the agent (the path's) of a passport route that
// takes no body naming them.
func passportTarget(r *http.Request, p *identity.Principal) (tenant, agent string, err error) {
	q, err := parseQuery(r, "tenant_id")
	if err != nil {
		return "", "", err
	}
	if tenant, err = passportTenant(p, q.get("tenant_id"), q.has("tenant_id")); err != nil {
		return "", "", err
	}
	if agent, err = passportAgent(r); err != nil {
		return "", "", err
	}
	return tenant, agent, nil
}

// noPassports answers the passport routes of a server without
// Config.Passports.
func noPassports() error {
	return errorf(http.StatusNotImplemented, codeNotImplemented, "this server does not keep passports")
}

// passportAgent returns the agent id of the path, checked.
func passportAgent(r *http.Request) (string, error) {
	agent := r.PathValue("agent_id")
	if msg := checkString(agent, true, oars.MaxIDLength); msg != "" {
		return "", badRequest("the agent id " + msg)
	}
	return agent, nil
}

// passportError maps a passport store error to a response.
func passportError(err error) error {
	switch {
	case errors.Is(err, identity.ErrPassportNotFound):
		return errorf(http.StatusNotFound, codePassportNotFound, "passport not found")
	case errors.Is(err, identity.ErrInvalidPassport):
		// The message names the field, never its value.
		msg := err.Error()
		if i := strings.LastIndex(msg, "invalid passport: "); i >= 0 {
			msg = msg[i+len("invalid passport: "):]
		}
		return errorf(http.StatusBadRequest, codeInvalidPassport, "invalid passport: "+msg)
	case errors.Is(err, identity.ErrPassportConflict):
		return errorf(http.StatusConflict, codeConflict, "the passport changed since the version given; read it again")
	case errors.Is(err, identity.ErrPassportTransition):
		return errorf(http.StatusConflict, codeConflict, "the passport's status cannot change that way (revoked is final)")
	}
	return unavailable("the passport store is unavailable", err)
}

// writePassport answers a passport as its JSON.
func writePassport(w http.ResponseWriter, status int, p *identity.Passport) error {
	data, err := identity.MarshalPassport(p)
	if err != nil {
		return internal(err)
	}
	writeJSON(w, status, json.RawMessage(data))
	return nil
}

// getPassport answers the passport of an agent of a tenant the admin sees.
func (s *server) getPassport(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	if s.cfg.Passports == nil {
		return noPassports()
	}
	tenant, agent, err := passportTarget(r, p)
	if err != nil {
		return err
	}
	pp, err := s.cfg.Passports.GetPassport(r.Context(), tenant, agent)
	if err != nil {
		return passportError(err)
	}
	return writePassport(w, http.StatusOK, pp)
}

// putPassport creates (version 0) or replaces (the version read) the
// passport of an agent, records a passport.updated event, and answers the
// stored passport (201 when created).
func (s *server) putPassport(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	if s.cfg.Passports == nil {
		return noPassports()
	}
	q, err := parseQuery(r, "tenant_id")
	if err != nil {
		return err
	}
	agent, err := passportAgent(r)
	if err != nil {
		return err
	}
	var body identity.Passport
	if err := s.readJSON(w, r, &body); err != nil {
		return err
	}
	switch {
	case body.AgentID == "":
		body.AgentID = agent
	case body.AgentID != agent:
		return badRequest(`"agent_id" differs from the agent of the path`)
	}
	named, given := q.get("tenant_id"), q.has("tenant_id")
	switch {
	case body.TenantID != "" && given && body.TenantID != named:
		return badRequest(`"tenant_id" differs from the query parameter`)
	case body.TenantID != "":
		named, given = body.TenantID, true
	}
	tenant, err := passportTenant(p, named, given)
	if err != nil {
		return err
	}
	body.TenantID = tenant
	created := body.Version == 0
	if err := s.cfg.Passports.PutPassport(r.Context(), &body); err != nil {
		return passportError(err)
	}
	if err := s.passportEvent(r, p, eventPassportUpdated, &body, ""); err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writePassport(w, status, &body)
}

// suspendPassport suspends an agent (the kill switch).
func (s *server) suspendPassport(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	return s.setPassportStatus(w, r, p, identity.PassportSuspended, eventPassportSuspended)
}

// resumePassport makes a suspended (or draft) passport active.
func (s *server) resumePassport(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	return s.setPassportStatus(w, r, p, identity.PassportActive, eventPassportResumed)
}

// statusBody is the optional body of suspend and resume.
type statusBody struct {
	Reason string `json:"reason"`
}

func (s *server) setPassportStatus(w http.ResponseWriter, r *http.Request, p *identity.Principal, status identity.PassportStatus, event string) error {
	if s.cfg.Passports == nil {
		return noPassports()
	}
	tenant, agent, err := passportTarget(r, p)
	if err != nil {
		return err
	}
	var body statusBody
	if r.ContentLength != 0 {
		if err := s.readJSON(w, r, &body); err != nil {
			return err
		}
		if msg := checkString(body.Reason, false, maxPassportReason); msg != "" {
			return badRequest(`"reason" ` + msg)
		}
	}
	pp, err := s.cfg.Passports.SetPassportStatus(r.Context(), tenant, agent, status)
	if err != nil {
		return passportError(err)
	}
	if err := s.passportEvent(r, p, event, pp, body.Reason); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "passport status set",
		slog.String("request_id", stateOf(r).id), slog.String("subject", p.Subject),
		slog.String("tenant_id", tenant), slog.String("agent_id", agent), slog.String("status", string(pp.Status)))
	return writePassport(w, http.StatusOK, pp)
}

// passportDetails are the details of a passport event.
type passportDetails struct {
	AgentID        string `json:"agent_id"`
	Status         string `json:"status"`
	Version        int64  `json:"version"`
	PassportDigest string `json:"passport_digest"`
	Reason         string `json:"reason,omitempty"`
}

// passportEvent records a signed event for a passport change. The change
// is already stored: if the ledger fails, the answer is 503 and the change
// stays (the caller may repeat it; suspending twice is harmless).
func (s *server) passportEvent(r *http.Request, p *identity.Principal, event string, pp *identity.Passport, reason string) error {
	data, err := identity.MarshalPassport(pp)
	if err != nil {
		return internal(err)
	}
	canon, err := receipt.Canonicalize(data)
	if err != nil {
		return internal(err)
	}
	details, err := json.Marshal(passportDetails{
		AgentID: pp.AgentID, Status: string(pp.Status), Version: pp.Version,
		PassportDigest: receipt.Digest(canon), Reason: reason,
	})
	if err != nil {
		return internal(err)
	}
	if _, err := s.guard.RecordEvent(r.Context(), &receipt.Event{
		Event: event, Actor: p.Subject, TenantID: pp.TenantID, Details: details,
	}); err != nil {
		return unavailable("the passport changed but the ledger is unavailable", err)
	}
	return nil
}
