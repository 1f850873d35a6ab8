// Package httpconn is the HTTP connector: it maps a tool's operations to
// REST calls described in YAML, so that OARS executes the actions it
// allowed (or people approved) and the agent never holds the credentials.
//
// [Load] or [Parse] reads a tool file into a [Config]; [New] builds the
// [*Connector] of one [ToolConfig] and [Register] adds every tool of a
// Config to a [connector.Registry]. A Connector is immutable and safe for
// concurrent use.
//
// # Tool files
//
//	tools:
//	  - id: tracker                     # the actions' tool_id
//	    base_url: https://tracker.example.com/api/v1   # http or https, no user info, query or fragment
//	    allow_private: ["10.0.0.0/8"]   # internal ranges this tool may reach (see connector/egress); default none
//	    timeout: 10s                    # per attempt; default 10s
//	    max_response_bytes: 1048576     # default 1 MiB
//	    headers: {Accept: application/json}   # static, non-secret
//	    auth:                           # optional
//	      type: bearer                  # bearer | basic | header | hmac
//	      secret: tracker/token         # vault name of the token, password, header value or HMAC key
//	      username: bot                 # basic only
//	      header: X-Api-Key             # header: required; hmac: default X-OARS-Signature
//	    idempotency_header: Idempotency-Key   # default; "" sends none
//	    retry: {max_attempts: 3, initial_backoff: 200ms, max_backoff: 2s}
//	    operations:
//	      create_issue:
//	        description: Open an issue
//	        method: POST                # GET, HEAD, POST, PUT, PATCH or DELETE
//	        path: /projects/{project}/issues
//	        query: {label: "{label}"}
//	        body: {title: "{title}", body: "{description}"}
//	        input_schema: {type: object, required: [project, title]}
//	        idempotent: false           # default true for GET, HEAD, PUT, DELETE
//	        success: [201]              # default any 2xx
//	        summary: {issue_id: /id, url: /html_url}
//	        record_output: false
//
// Parsing is strict: a file holds one YAML document of at most
// [MaxConfigSize] bytes; unknown, duplicate and missing keys, values of the
// wrong type, aliases and invalid values are errors. Every error is a
// [*ParseError] naming the file, the line, the tool and the key. Parse fills
// in the defaults, so a parsed [ToolConfig] shows the values in effect.
//
// Secrets never appear in tool files: auth.secret is the name of a secret
// in the vault (connector/vault), read on every execution. Static headers
// may not set Authorization, Proxy-Authorization, Cookie, hop-by-hop
// headers or the auth and idempotency headers.
//
// # Templates
//
// A placeholder is a string of the form {name} or {a.b} (a dotted path
// into nested objects) naming an input field.
//
//   - path: each {name} is replaced by the field, which must be a
//     non-empty string other than "." and ".." or a number, path-escaped
//     (so "a/b" becomes a%2Fb). A missing or unsuitable field fails the
//     execution with class "invalid_input". The literal parts are already
//     escaped path text; the path is appended to base_url's path.
//   - query: a value that is exactly a placeholder is replaced by the
//     field (string, number or boolean, as text) and the parameter is left
//     out when the field is absent or null; any other value is literal.
//   - body: a JSON template. A string that is exactly a placeholder is
//     replaced by the field keeping its JSON type; the string "$input" is
//     replaced by the whole input; every other value is literal. An object
//     member whose placeholder names an absent field is left out (so a
//     PATCH sends only what the action gives); an absent field anywhere
//     else fails with "invalid_input". The body is sent as
//     application/json unless a static Content-Type header says otherwise.
//     An operation without body sends none.
//
// # Authentication
//
//   - bearer: Authorization: Bearer <secret>.
//   - basic: Authorization: Basic, with username and the secret as
//     password.
//   - header: the secret as the value of header.
//   - hmac: the request is signed with the secret as HMAC-SHA256 key. The
//     signature header (X-OARS-Signature by default) is
//     "t=<unix seconds>,v1=<hex signature>", where the signature is over
//     the bytes "<t>.<METHOD>.<request target>.<body>": the request target
//     is the escaped path and query exactly as sent on the request line
//     (for example /api/v1/projects/p%2F1/issues?label=bug) and body is the
//     raw request body (empty when there is none). A receiver recomputes it
//     and rejects timestamps too far from its clock.
//
// A secret the vault does not give fails with class "secret_unavailable",
// and so does an empty one or, except for an HMAC key, one that is not a
// valid header value (a control character, such as a trailing newline).
//
// Redirects are followed only within base_url's origin (scheme, host and
// port), so that no credential is sent to another server; a redirect
// elsewhere is returned as the upstream's 3xx status.
//
// # Results
//
// A response with a success status gives a [connector.Result] whose
// UpstreamStatus is the status and whose Output is the response body when
// it is strict JSON (one value, no duplicate keys, valid UTF-8), nil when
// it is empty, and otherwise the JSON object
// {"content_type": …, "body_base64": …}. The receipt records only the
// output's digest and Summary, never the raw output unless the operation
// sets record_output: then, for a JSON object response of at most
// receipt.MaxSummaryBytes canonical bytes, Summary is the whole response
// (so the receipt records it as output_summary); larger or non-object
// responses fall back to the summary pointers. Otherwise Summary is the
// object built from the summary JSON Pointers (RFC 6901) into a JSON
// response; pointers that resolve to nothing are left out, and it is nil
// when none resolves. Only set record_output for responses that hold no
// secrets or personal data you may not keep.
//
// # Failures and retries
//
// Every failure is a [*connector.Error]:
//
//	class                retryable  when
//	unknown_operation    no         the tool has no such operation (wraps connector.ErrUnknownOperation)
//	invalid_input        no         the input is not an object, a template field is missing or
//	                                unsuitable, or the idempotency key is not a header value
//	                                (wraps connector.ErrInvalidInput)
//	secret_unavailable   no         the vault does not give a usable auth secret
//	egress_refused       no         the destination is refused (errors.Is egress.ErrRefused)
//	timeout              yes        the attempt's timeout or the caller's deadline passed
//	cancelled            yes        the caller's context was cancelled
//	connect              yes        connecting, sending or reading failed
//	upstream_429         yes        status 429
//	upstream_5xx         yes        status 500-599
//	upstream_4xx         no         another 4xx status
//	upstream_status      no         any other status that is not a success
//	response_too_large   no         the body is longer than max_response_bytes
//
// An idempotent operation is attempted up to retry.max_attempts times
// (default 1: retries are left to the execution queue) while the failure
// is retryable, waiting initial_backoff, then twice as long each time up to
// max_backoff, or the response's Retry-After (seconds or an HTTP date)
// capped at max_backoff. A non-idempotent operation is attempted exactly
// once per [Connector.Execute]. Every attempt sends the same idempotency
// header, the request's IdempotencyKey.
//
// Error texts and logs name the tool, operation, method, status and class,
// never a secret, a header value, the query or an input value.
package httpconn
