// Package webhook tells approvers that an action waits for them, by
// posting a signed JSON notification to a URL they (or their chat bridge,
// paging tool, ticketing system) listen on.
//
// # Notifier
//
// [Notifier] implements approval.Notifier. [Notifier.Notify] builds the
// body and puts it on a bounded queue; it never blocks and never does I/O.
// When the queue is full the notification is dropped, logged at Error and
// counted (see [Notifier.Stats] and [WithMetrics]). Worker goroutines
// started by [Notifier.Run] deliver the queue: each attempt is one POST
// with its own timeout; network errors, 5xx and 429 answers are retried
// with exponential backoff and jitter up to a maximum number of attempts,
// other answers (2xx: delivered; 3xx, 4xx: rejected) end the delivery.
// Redirects are not followed. When Run's context ends, Notify stops
// accepting and the workers deliver what is queued, until a drain
// deadline.
//
// # The request
//
//	POST <endpoint>
//	Content-Type: application/json
//	Oars-Event: approval.requested
//	Oars-Delivery: <uuid, the same for every attempt of one notification>
//	Oars-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
//	{"type":"approval.requested","action_id":"…","tenant_id":"…",
//	 "agent_id":"…","requester":"…",
//	 "resource":{"tool_id":"…","operation":"…","target":"…"},
//	 "requirement":{"roles":[…],"users":[…],"quorum":2,
//	                "expires_at":"2026-05-01T09:15:00Z","step_up":true},
//	 "reasons":[…],
//	 "links":{"approval":"<api>/v1/approvals/<id>",
//	          "decision":"<api>/v1/approvals/<id>/decision"}}
//
// [Payload] is the body as a Go type, for receivers written in Go.
//
// # Signature scheme
//
// The Oars-Signature header carries t, the Unix time in seconds at which
// the attempt was signed, and v1, the lowercase hex HMAC-SHA256 under the
// shared secret of the bytes
//
//	<t> "." <body>
//
// that is the decimal timestamp, a full stop and the exact request body.
// A receiver recomputes the HMAC over the raw body it received (before any
// JSON parsing), compares it in constant time, and refuses a t too far
// from its own clock, which bounds replays. The header may carry several
// v1 values (during a secret rotation); one match suffices. [Sign] makes
// the header and [VerifySignature] checks it. Each retry is signed afresh
// with a new t, so a retry after a long backoff still verifies; the
// Oars-Delivery value lets a receiver drop duplicates.
package webhook
