// Package policy parses, compiles and evaluates OARS policies: YAML
// documents whose rules are CEL expressions over the action an agent wants
// to take.
//
// Compile once, evaluate many: [Parse] (or [LoadFile], [LoadDir]) validates
// and type-checks a document and yields an immutable [*Policy]; [NewSet]
// combines policies into a [*Set] whose [Set.Evaluate] decides an [Input].
// Both are safe for concurrent use.
//
// # Documents
//
//	id: payments            # required, ^[a-z0-9][a-z0-9._-]*$
//	version: "3"            # required string
//	description: …          # optional
//	default: deny           # allow | deny | require_approval; deny when absent
//	mode: enforce           # enforce (default) | shadow
//	tenants: [acme]         # optional; absent or empty = all tenants
//	rules:
//	  - id: small-refunds   # required, same pattern, unique in the document
//	    when: action.tool_id == "payments" && has(input.amount) && input.amount <= 100
//	    effect: allow       # allow | deny | require_approval
//	    reason: small refunds are allowed   # required, written into receipts
//	  - id: big-refunds
//	    when: action.tool_id == "payments" && has(input.amount) && input.amount > 100
//	    effect: require_approval
//	    reason: refunds over 100 need a second person
//	    approval:           # required with require_approval, refused otherwise
//	      roles: [finance-approver]   # any of these roles may approve
//	      users: [alice]              # and/or these users
//	      quorum: 2                   # distinct approvers, default 1
//	      expiry: 30m                 # Go duration, default 24h
//	      step_up: true               # approvers need a second factor
//
// Parsing is strict: a file holds exactly one YAML document of at most
// [MaxDocumentSize] bytes; unknown, duplicate and missing keys, values of
// the wrong YAML type (version: 3 must be quoted), aliases and out-of-range
// values are errors. Every error is a [*ParseError] naming the file, the
// line, the rule and the key. A rule's `when` must type-check as a bool; a
// compile error wraps an [*ExprError] with the line and column within the
// expression.
//
// # CEL variables
//
// Expressions see typed variables, so that misspelt fields are load-time
// errors:
//
//	action.tool_id, action.operation, action.target        string
//	input                                                  dyn: the action's JSON input
//	principal.user_id                                      string
//	principal.roles                                        list(string)
//	principal.delegation                                   list of {sub, iss string; scope list(string)}
//	agent.id, tenant.id                                    string
//	agent.capabilities                                     list(string): the passport's capability ids
//	agent.assurance_level                                  string: the passport's (L0 … L4FIN)
//	context.time                                           timestamp
//	context.request                                        map(string, string)
//
// The standard CEL library and the strings extension (cel-go ext.Strings)
// are available. Numbers compare across types, so `input.amount > 100`
// works although JSON numbers are doubles. An action without input sees
// `input` as an empty object.
//
// `input` is untyped: reading a key the action did not send is a runtime
// error, which fails the evaluation (and so the action). Guard optional
// fields with has(): `has(input.amount) && input.amount > 100`. CEL's `&&`
// and `||` absorb an error when the other side decides the result, so
// `action.tool_id == "payments" && input.amount > 100` only fails for
// payments actions without an amount. On the typed variables, has() reports
// whether a field is non-empty.
//
// # Evaluation
//
// [Set.Evaluate] evaluates every policy that applies to the input's tenant
// and combines them with deny-overrides; see its documentation for the
// exact rules and [Decision] for what it reports. It is fail-closed: when no
// enforcing policy applies the effect is deny, and any evaluation error in
// an enforcing policy (a runtime error, the cost limit, a cancelled
// context) is returned as an error with no decision. Shadow-mode policies
// are evaluated too, reported in [Decision.Shadow], and never change the
// effect or fail the evaluation.
//
// Each rule's evaluation is bounded by [MaxEvalCost]: rules whose static
// cost estimate could exceed it are evaluated with cel-go's runtime cost
// limit, and rules with comprehensions check the context every 100
// iterations, so evaluation stays cancellable.
//
// Matched rules are written into receipts as "<policy_id>/<rule_id>"
// ([MatchedRuleName]).
//
// # Digests
//
// [Policy.Digest] identifies what a policy means, not how it is spelt: it
// is "sha256:" and the hex SHA-256 of the RFC 8785 (JCS) canonical JSON of
//
//	{"id", "version", "description", "default", "mode",
//	 "tenants": [sorted],
//	 "rules": [{"id", "when", "effect", "reason",
//	            "approval": null | {"roles": [sorted], "users": [sorted],
//	                                "quorum", "expiry": Go duration string, "step_up"}}]}
//
// with defaults filled in and `when` trimmed of surrounding space. A
// [Set]'s digest is that of its single policy, or for several the digest of
// the canonical JSON of the id-sorted list of {"id","version","digest"}.
//
// # Tests
//
// Policy test cases live next to the policies in *_test.yaml files, which
// [LoadDir] skips and [LoadTests] reads:
//
//	cases:
//	  - name: small refund allowed
//	    action: {tool_id: payments, operation: refund, target: "order/1"}
//	    input: {amount: 50}
//	    principal: {user_id: bob, roles: [support]}
//	    agent: {id: agent-1}
//	    tenant: {id: acme}
//	    context: {time: "2026-01-02T15:04:05Z", request: {ip: "10.0.0.1"}}
//	    expect:
//	      effect: allow
//	      matched_rules: [payments/small-refunds]   # optional, exact list
//
// [RunTests] evaluates them; `oars policy test DIR` is the command-line
// front end.
package policy
