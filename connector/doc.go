// Package connector executes allowed and approved actions against the
// real systems, so that agents never hold the credentials.
//
// A [Connector] offers operations, each with an input JSON Schema, and
// executes one for an action. A [Registry] maps tool ids to connectors,
// compiles the schemas once, and can be limited to an allowlist of tools
// (OARS_ALLOWED_TOOLS in oarsd). A Guard built with oars.WithConnectors
// denies an action whose tool or operation is unknown, or whose input does
// not match the schema, before any policy runs, and executes the others
// with their connector.
//
// Two connectors ship here: [Func] wraps Go functions (the in-process path
// for a host application's own tools), and the HTTP connector in
// connector/httpconn maps operations to REST calls configured in YAML,
// with credentials from the vault (connector/vault) and outbound
// connections checked by connector/egress.
//
// Failures are [*Error] values: the failed receipt records their class and
// upstream status, never their text, and the queue retries only retryable
// failures of idempotent operations.
package connector
