// Package mcp is a governing MCP proxy: it connects to upstream MCP
// servers (Streamable HTTP or stdio), offers their tools downstream, and
// sends every tools/call through a [Decider], so that MCP clients get
// the same policies, approvals and signed receipts as any other action.
//
// Each call is an action: tool_id is the upstream's name, operation the
// tool's name, target the value of the upstream's target_argument (empty
// by default), input the arguments, and context.request carries the
// tool's annotations as untrusted hints (mcp_read_only_hint,
// mcp_destructive_hint, mcp_idempotent_hint, mcp_open_world_hint) and
// mcp_upstream. An allowed call is forwarded (results, progress and
// cancellation pass through; the upstream's _meta server info is replaced
// by the proxy's) and recorded executing then executed (output digest) or
// failed. A denied call returns isError with the reasons and the receipt
// id; protocol errors are kept for unknown tools and malformed requests.
//
// tools/list hides the tools the caller could never call (policy.Set
// NeverAllows: rules that read the input are unknown); call-time rules
// still run on every call. A name offered by several upstreams is exposed
// as "<upstream>__<name>" for each of them; unique names are kept.
// Upstream schemas and annotations pass through unchanged; a tool whose
// input schema is not an object schema is skipped with a warning.
//
// A call that requires approval answers input_required with a URL
// elicitation pointing at the approval page and an HMAC-authenticated,
// single-use requestState bound to the caller, the tool, the input and
// the action. Clients on protocol 2026-07-28 retry the call; for older
// clients the SDK elicits and re-runs the handler once. The retry waits
// for the decision up to Options.ApprovalWait (keep it under the client's
// tool timeout): approved → forwarded; rejected, expired or no decision in
// time (the action is then cancelled) → denied. Accepting the
// elicitation proves nothing: only an OARS approval approves.
//
// # Deciders
//
// The Decider is an in-process *oars.Guard (Options.Guard: its policies,
// its ledger) or any other [Decider] (Options.Decider), such as a
// [Remote], which decides at an oarsd over its HTTP API and leaves the
// receipts there: the proxy then runs next to the MCP client (oars mcp
// wrap --server) while decisions, approvals and the ledger stay on the
// server. A Remote claims a call at the server (executing) before it is
// forwarded, and records executed (or failed) when it reports the
// result, after the upstream answered.
//
// Optional abilities of a Decider, found by type assertion:
//
//   - [PolicySource] (Policies): tools/list hides the tools the policies
//     never allow. A Decider without it (a Remote) lists every tool.
package mcp
