// Package httpapi is the HTTP API of oarsd: handlers, authentication,
// permissions, input defences and metrics over an [oars.Guard] and its
// ledger. [New] returns one http.Handler; cmd/oarsd wires it into a server
// with TLS and timeouts.
//
// # Routes and permissions
//
// Every route except the public ones is authenticated by Config.Auth and
// then admitted by one permission table (the routes variable), route ×
// role. A caller needs at least one of the listed roles; otherwise 403
// forbidden.
//
//	route                                   admin operator auditor agent approver
//	GET  /health                            public (200 {"status":"ok"})
//	GET  /ready                             public (200, or 503 with the probe's error class)
//	GET  /.well-known/oap[/]                public (OAP discovery document)
//	GET  /.well-known/oap/jwks.json         public (receipt keys, current and retired)
//	GET  /metrics                             x     x       x
//	POST /v1/actions                          x     x               x
//	GET  /v1/actions/{id}                     x     x       x       x
//	POST /v1/actions/{id}/cancel              x     x               x
//	POST /v1/actions/{id}/claim               x     x               x
//	POST /v1/actions/{id}/result              x     x               x
//	POST /v1/hooks/{agent}                    x     x               x
//	POST|GET|DELETE /mcp                      x     x               x
//	GET  /v1/approvals                        x     x       x             x
//	GET  /v1/approvals/{id}                   x     x       x             x
//	POST /v1/approvals/{id}/decision          x                           x
//	POST /v1/approvers/{user_id}/totp         x
//	GET  /v1/receipts                         x     x       x       x
//	GET  /v1/receipts/{id}                    x     x       x       x
//	POST /v1/receipts/verify                  x     x       x       x     x
//	GET  /v1/ledger/checkpoint                x     x       x       x     x
//	GET  /v1/ledger/verifier-key              x     x       x       x     x
//	GET  /v1/ledger/proofs/inclusion          x     x       x       x     x
//	GET  /v1/ledger/proofs/consistency        x     x       x       x     x
//	GET  /v1/ledger/entries/{index}           x             x
//	GET  /v1/policies                         x     x       x
//	GET  /v1/policies/{name}                  x     x       x
//	POST /v1/policies/reload                  x
//	GET  /v1/passports/{agent_id}             x
//	PUT  /v1/passports/{agent_id}             x
//	POST /v1/passports/{agent_id}/suspend     x
//	POST /v1/passports/{agent_id}/resume      x
//
// Data is scoped in the handlers: an action, receipt or ledger entry of a
// tenant the caller does not have (identity.Principal.InTenant), or of
// another agent for a caller bound to one agent, answers 404 exactly like
// one that does not exist, so the existence of other tenants' data does not
// leak. Ledger entries that belong to no tenant (events without tenant,
// foreign leaves) are visible only to callers of all tenants ("*"). Proofs
// and checkpoints carry only hashes and are open to every role. Policies
// are not tenant-scoped.
//
// # Actions
//
// POST /v1/actions takes {tenant_id, agent_id, user_context:{user_id,
// roles?}, resource:{tool_id, operation, target?}, input:{…}} and an
// optional Idempotency-Key header, and calls [oars.Guard.Decide]. It
// answers 201 (200 for an idempotent replay) with {action_id, status,
// receipts, ledger_indexes, replayed}; receipts are the signed receipts
// byte for byte and ledger_indexes their indexes in the ledger, for
// inclusion proofs (GET /v1/actions/{id} and GET /v1/receipts answer the
// same pair; GET /v1/receipts/{id} sends the index in the
// Oars-Ledger-Index header). A
// denied or pending action is still 201: it is a recorded decision, not an
// HTTP error. The same Idempotency-Key with a different action is 409
// idempotency_conflict. The tenant must be one of the caller's (404 "tenant
// not found" otherwise). The request is bound to the credential: a
// caller bound to an agent may act only as that agent, a credential that
// names a user (a user's JWT, a delegation token) only for that user
// (user_context.user_id), and a credential with scopes only for tool
// calls they allow. A request that breaks one of these is refused: the
// Guard records a denied receipt naming why ([oars.Guard.Refuse], no
// policy evaluated) and the answer is 403 forbidden with the receipt's id
// in details.receipt_id (503 if the refusal could not be recorded). For
// a credential that names a user, the user's roles seen by policies are
// the credential's groups; otherwise user_context.roles reach the
// policies only when the caller is an admin or operator, and are ignored
// for other callers (agents), since an agent could otherwise grant its
// user any role. A delegation token's chain of actors is recorded in the
// receipts' principal.delegation (current actor first) and seen by
// policies as principal.delegation. A delegation token whose chain
// widens the scope or lifetime granted is refused with 401.
//
// With Config.Executors, the server executes the actions of those tools
// itself: an allowed action is claimed (an executing receipt) and run
// before POST /v1/actions answers, whose receipts then include executing
// and executed or failed, and whose output member is the tool's output.
// The tools served by the Guard's connectors (oars.WithConnectors) are
// executed the same way; an action on a tool the connectors do not serve,
// an unknown operation or input that does not match the operation's
// schema is denied before policy (error_class unknown_tool,
// unknown_operation or invalid_input). With Config.Enqueue their
// execution is queued instead: the answer is 202 with "queued": true and
// the allowed receipt; GET /v1/actions/{id} shows the rest as it comes.
// With Config.Inputs, the canonical input of an action held for approval
// is stored before the answer, so that the server can execute the action
// once approved; if it cannot be stored the action is cancelled and the
// answer is 503.
//
// # Approvals
//
// An approver is the caller as [approval.Approver]: its user
// (Principal.UserID, else its Subject), its roles (Principal.Groups, the
// business groups policies name such as "finance-approver", and its API
// roles as strings) and its tenants.
//
// GET /v1/approvals?tenant_id=&status=&cursor=&limit= lists actions held
// for approval: status pending (the default: waiting for votes and not
// expired, oldest first), approved, rejected, expired or cancelled (in
// ledger order of that outcome; approved lists actions approved whatever
// their status now). It answers {"approvals":[view…],"next_cursor"}; pass
// next_cursor back as cursor for the next page ("" on the last), with the
// same status. The cursor is opaque. limit is 1 to 100, default 20. The
// tenant is scoped as for receipts: a caller of one tenant lists it, one
// of several must name one, one of all tenants may name one or none.
//
// GET /v1/approvals/{id} (the action id) answers the view: {action_id,
// tenant_id, agent_id, requester, resource, input_digest, status,
// requirement{roles, users, quorum, expires_at, step_up},
// votes[{approver, roles, decision, reason, step_up_method, receipt_id,
// at}], reasons, requested_at, receipts, ledger_indexes}. Actions of other
// tenants and actions never held for approval are 404.
//
// POST /v1/approvals/{id}/decision takes {"decision":"approve"|"reject",
// "reason", "totp"} and records a vote ([oars.Guard.Vote]); it answers the
// updated view. Approving an action whose requirement asks for step-up
// needs "totp", a code of the approver's enrolled TOTP (Config.StepUp),
// checked before the vote: missing 403 step_up_required, wrong 403
// invalid_code, already used 403 code_replayed, not enrolled 403
// step_up_not_enrolled, too many failures 429; none of them records a
// vote. Refused votes: the requester or acting agent 403 self_approval, a
// caller without a required role 403 not_approver, another tenant 404, a
// second vote 409 already_voted, an action no longer pending 409
// not_pending, an expired one 409 expired. A vote that reaches the quorum
// approves the action, and Config.Approved tells the host to execute it.
//
// POST /v1/actions/{id}/cancel, with an optional body {"reason"}, cancels
// an action pending approval ([oars.Guard.Cancel]): only its requester
// (the same user) or an admin may (403 not_requester), and an action not
// pending is 409 not_pending (expired: 409 expired). It answers the view.
//
// POST /v1/approvers/{user_id}/totp?tenant_id= enrolls a new TOTP secret
// for an approver of a tenant the admin sees, replacing any earlier one,
// records an approver.totp_enrolled event in the ledger, and answers
// {"secret","otpauth_url"} once, never stored or logged in the clear.
//
// # Passports
//
// The passport routes (Config.Passports; 501 without) serve the OAP
// passport of an agent of a tenant, named by ?tenant_id= (or the body's
// tenant_id for PUT; optional for a caller of one tenant). GET answers
// the passport JSON ({agent_id, tenant_id, owner_id, status,
// assurance_level, capabilities:[{id, limits?}], created_at, updated_at,
// version}); 404 passport_not_found. PUT takes the same JSON, decoded
// strictly, with the version read (0 to create: 201), and answers the
// stored passport; a stale version is 409 conflict, an invalid passport
// 400 invalid_passport, a status change the OAP state machine refuses
// (out of revoked, for instance) 409 conflict. POST …/suspend and
// …/resume, with an optional body {"reason"}, set the status to suspended
// or active (repeating one is harmless) and answer the passport. Each
// change records a signed event (passport.updated, passport.suspended,
// passport.resumed) with the agent, status, version and passport_digest
// (sha256 of the passport's RFC 8785 form); the change is stored first,
// so a ledger failure answers 503 with the change in place. A suspended
// or revoked agent's actions are denied before policy (see
// oars.WithPassports).
//
// # Errors
//
// Errors are JSON: {"error":{"code","message","details":{"request_id"}},
// "timestamp"}, compatible with OAP's error envelope. Codes come from the
// OAP enum where one fits (validation_failed, unauthorized, forbidden,
// not_found, rate_limit_exceeded, internal_server_error,
// service_unavailable, invalid_policy, idempotency_conflict, conflict,
// invalid_passport, passport_not_found) plus
// payload_too_large, method_not_allowed, unsupported_media_type,
// not_implemented and the approval codes above (step_up_required,
// invalid_code, code_replayed, step_up_not_enrolled, self_approval,
// not_approver, not_requester, not_pending, already_voted, expired). Messages never hold secrets, credentials, stack traces
// or input values (field names are quoted); 5xx messages are generic and
// the cause is logged with the request id.
//
// # Defences
//
//   - Bodies are bounded (413), must be Content-Type application/json
//     (415), strict JSON (duplicate keys, invalid UTF-8, excessive nesting
//     and trailing data are 400 naming the problem and its location), and
//     are decoded with unknown fields rejected and wrong types reported by
//     field name.
//   - Each authenticated principal (by Subject) has a token-bucket rate
//     limit; beyond it, 429 with Retry-After.
//   - Every response carries X-Request-Id (the client's if it is a sane
//     token, else a new one), X-Content-Type-Options: nosniff,
//     X-Frame-Options: DENY, a Content-Security-Policy of default-src
//     'none', Referrer-Policy: no-referrer, and Cache-Control: no-store
//     (the OAP documents may be cached for five minutes).
//   - CORS headers are sent only for origins listed in Config.CORSOrigins,
//     matched exactly; preflight requests are answered directly.
//   - Panics in handlers are recovered, logged and answered 500.
//
// # Observability
//
// With Config.Registry set, the handler exports oars_http_requests_total
// {route, code}, oars_http_request_duration_seconds {route} (route is the
// mux pattern or "unmatched", never the raw path), oars_ledger_size and
// oars_build_info {version}, and serves the registry at /metrics. Each
// request is logged at Info with method, route, status, duration, bytes,
// request id and the caller's subject; never query strings, bodies or
// credentials.
package httpapi
