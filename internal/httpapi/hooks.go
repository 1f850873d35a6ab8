package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/hook"
	"github.com/oarsdev/oars/identity"
)

// postHook answers a coding agent's hook event, the server side of
// `oars hook AGENT --server URL`: POST /v1/hooks/{agent} (claude-code,
// cursor, codex or gemini; another name is 404) with the JSON the agent
// wrote to its hook's stdin as the body (Content-Type application/json,
// at most Config.MaxBodyBytes). It requires the roles of POST /v1/actions.
//
// The answer is 200 with the hook's answer, {"exit_code":N,
// "stdout":{…},"stderr":"…"} (see hook.Answer): the CLI writes stdout and
// stderr and exits with exit_code, so the agent gets exactly what a local
// hook would answer. The envelope, rather than the agent's JSON alone,
// carries the exit code the protocols need to fail closed (2). A
// malformed event or a decision that cannot be made (ledger unavailable)
// is also a 200 with the fail-closed answer (deny, exit code 2); its
// stderr names the request id, the cause is logged. HTTP errors (401, 403,
// 404, 413…) are for requests that are not a hook event of the caller;
// the CLI answers them with deny too.
//
// The action is the caller's: its tenant is the query parameter tenant_id
// (required unless the credential has exactly one tenant), its agent_id
// the query parameter agent_id, else the agent the credential is bound
// to, else the agent's name (a credential bound to an agent may not name
// another: 403), and its user the user the credential acts for, else the
// credential's subject (for a credential that names a user its groups are
// the user's roles, and a delegation chain is recorded as in POST
// /v1/actions). A tool call the credential's scopes do not allow is
// refused with a recorded denial, as POST /v1/actions does, and answered
// deny. Request metadata seen by policies is that of POST /v1/actions
// plus the hook's (see package hook).
func (s *server) postHook(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	agent, err := hook.ParseAgent(r.PathValue("agent"))
	if err != nil {
		return notFound("unknown agent")
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	opts, err := s.hookOptions(r, p, agent)
	if err != nil {
		return err
	}
	ev, err := hook.Parse(agent, body)
	if err != nil {
		writeJSON(w, http.StatusOK, hook.Fail(agent, body, err.Error()))
		return nil
	}
	var ans hook.Answer
	switch ev.Phase {
	case hook.Before:
		ans, err = s.decideHook(r, p, ev, opts)
	default:
		ans, err = hook.HandleEvent(r.Context(), s.guard, ev, opts)
		if errors.Is(err, hook.ErrNoDecision) || errors.Is(err, hook.ErrNotRecorded) || errors.Is(err, oars.ErrApprovalMismatch) {
			// The caller's own mistake or the agent's flow: say so.
			ans, err = hook.FailEvent(ev, err.Error()), nil
		}
	}
	if err != nil {
		id := stateOf(r).id
		s.log.ErrorContext(r.Context(), "hook event not handled; answered fail-closed",
			slog.String("request_id", id), slog.String("agent", string(agent)), slog.Any("error", err))
		ans = hook.FailEvent(ev, fmt.Sprintf("oarsd could not handle the event (request id %s)", id))
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// decideHook decides a before-tool event, refusing (with a recorded
// denial) a tool call the credential's scopes do not allow.
func (s *server) decideHook(r *http.Request, p *identity.Principal, ev *hook.Event, opts hook.Options) (hook.Answer, error) {
	a, err := ev.Action(opts)
	if err != nil {
		return hook.Answer{}, err
	}
	if reason := scopeRefusal(p, a.Resource.ToolID, a.Resource.Operation); reason != "" {
		out, err := s.guard.Refuse(r.Context(), a, reason)
		if err != nil {
			return hook.Answer{}, err
		}
		d, err := hook.DecisionOf(out)
		if err != nil {
			return hook.Answer{}, err
		}
		return hook.Reply(ev, d), nil
	}
	d, err := hook.Decide(r.Context(), s.guard, ev, opts)
	if err != nil {
		return hook.Answer{}, err
	}
	return hook.Reply(ev, d), nil
}

// hookOptions returns for whom the caller's hook events are decided (see
// postHook).
func (s *server) hookOptions(r *http.Request, p *identity.Principal, agent hook.Agent) (hook.Options, error) {
	q := r.URL.Query()
	tenant := q.Get("tenant_id")
	switch {
	case tenant != "":
		if checkString(tenant, true, oars.MaxIDLength) != "" || !p.InTenant(tenant) {
			return hook.Options{}, notFound("tenant not found")
		}
	case len(p.Tenants) == 1 && p.Tenants[0] != identity.AllTenants:
		tenant = p.Tenants[0]
	default:
		return hook.Options{}, badRequest(`query parameter "tenant_id" is required: the credential has several tenants`)
	}
	agentID := q.Get("agent_id")
	switch {
	case agentID == "" && p.AgentID != "":
		agentID = p.AgentID
	case agentID == "":
		agentID = string(agent)
	case checkString(agentID, true, oars.MaxIDLength) != "":
		return hook.Options{}, badRequest(`query parameter "agent_id" ` + checkString(agentID, true, oars.MaxIDLength))
	case !p.MaySeeAgent(agentID):
		return hook.Options{}, errorf(http.StatusForbidden, codeForbidden, fmt.Sprintf("agent_id does not match the agent the credential is bound to (%q)", p.AgentID))
	}
	user := p.UserID
	var roles []string
	if user != "" {
		roles = slices.Clone(p.Groups)
	} else {
		user = p.Subject
	}
	return hook.Options{
		TenantID:  tenant,
		AgentID:   agentID,
		Principal: oars.Principal{UserID: user, Roles: roles, Delegation: delegationHops(p.Delegation)},
		Request:   requestMetadata(r, p),
	}, nil
}
