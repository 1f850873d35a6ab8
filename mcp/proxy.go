package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/connector/egress"
	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// Caller is who calls the proxy's tools: the principal of the actions.
type Caller struct {
	TenantID, AgentID, UserID string
	Roles                     []string
	Delegation                []receipt.DelegationHop
	// Allows, if set, limits the tools the caller's credential may call
	// (scopes): a call it refuses gets a denied receipt (Guard.Refuse)
	// before any policy, and the tool is not listed.
	Allows func(toolID, operation string) bool
}

// CallerFunc returns the caller of a request from its extra data (the
// authenticated token info, the HTTP header). An error refuses the
// request.
type CallerFunc func(ctx context.Context, extra *sdk.RequestExtra) (*Caller, error)

// progressGrace is how long a call's progress route outlives the call.
const progressGrace = 30 * time.Second

// Decider decides and records the proxy's tool calls: the methods of
// [oars.Guard] the proxy calls, with their contracts. *oars.Guard
// implements it (in-process decisions and ledger), and so does [Remote]
// (decisions and receipts at an oarsd). Implementations must be safe for
// concurrent use and must not modify the actions' maps and slices
// (Request is shared by the calls of a tool).
type Decider interface {
	// Decide decides a and records the decision: status allowed, denied
	// or pending_approval (a denial is not an error). On error the
	// Outcome, if not nil, lists the receipts that were recorded; an
	// error wrapping oars.ErrInvalidAction means a is malformed.
	Decide(ctx context.Context, a *oars.Action) (*oars.Outcome, error)
	// Execute runs exec for the allowed or approved action id, whose call
	// a must be, and records executing then executed or failed. It
	// returns errors wrapping oars.ErrNotApproved, oars.ErrAlreadyClaimed
	// or oars.ErrApprovalMismatch for an action it may not run, and
	// exec's error (wrapped) when exec failed.
	Execute(ctx context.Context, id string, a *oars.Action, exec oars.ExecFunc) (*oars.Outcome, error)
	// Wait returns when action id is no longer pending approval or
	// executing; when ctx ends first, an error wrapping
	// oars.ErrPendingApproval and ctx.Err().
	Wait(ctx context.Context, id string) (*oars.Outcome, error)
	// Cancel cancels action id, pending approval, on behalf of by.
	Cancel(ctx context.Context, id string, by approval.Approver, reason string) (*oars.Outcome, error)
	// Refuse denies a before any policy, for reason.
	Refuse(ctx context.Context, a *oars.Action, reason string) (*oars.Outcome, error)
}

// PolicySource is the optional interface of a [Decider] that can show its
// policies: tools/list then hides the tools they never allow. Without it
// (as for [Remote]) every tool is listed, and the policies still decide
// each call.
type PolicySource interface {
	Policies() *policy.Set
}

var (
	_ Decider      = (*oars.Guard)(nil)
	_ PolicySource = (*oars.Guard)(nil)
)

// Options configure a [Proxy].
type Options struct {
	// Guard decides every tool call in-process. Give Guard or Decider.
	Guard *oars.Guard
	// Decider decides every tool call when Guard is nil (for example a
	// [Remote]).
	Decider Decider
	// Caller identifies the caller of each request; required.
	Caller CallerFunc
	// Secrets holds the upstreams' header secrets.
	Secrets vault.Source
	// StateKey authenticates the requestState of approval round trips
	// (HMAC-SHA256); at least 32 bytes. Without it, calls that need an
	// approval are denied.
	StateKey []byte
	// ApprovalURL returns the page or API where a person decides an
	// action held for approval; the URL elicitation points there.
	ApprovalURL func(actionID string) string
	// ApprovalWait bounds how long the retry of a call held for approval
	// waits for the decision before it is denied (and the action
	// cancelled). Keep it under the clients' tool timeout. Default 30s.
	ApprovalWait time.Duration
	// Resolver resolves upstream host names (egress checks); nil means
	// the system resolver.
	Resolver egress.Resolver
	// Logger receives the proxy's logs; nil discards them.
	Logger *slog.Logger
	// Name and Version are the proxy's implementation info (defaults
	// "oars-mcp-proxy" and "v1").
	Name, Version string
}

// Proxy is a governing MCP proxy: every tools/call of a downstream client
// is an action decided by the Guard, and only allowed (or approved) calls
// reach the upstream.
type Proxy struct {
	opts    Options
	decider Decider
	log     *slog.Logger
	server  *sdk.Server
	ups     []*upstream

	mu     sync.RWMutex
	routes map[string]*route // downstream tool name -> route

	progress sync.Map // upstream progress token -> progressRoute
	tokens   atomic.Int64
	states   usedStates
}

type upstream struct {
	cfg     Upstream
	session *sdk.ClientSession
	tools   []*sdk.Tool
}

type route struct {
	up   *upstream
	tool *sdk.Tool // as the upstream lists it
	name string    // downstream name
	// hints are the tool's annotations as policies see them (see hints),
	// computed once per listing and shared, read-only, by every call.
	hints map[string]string
}

type progressRoute struct {
	session *sdk.ServerSession
	token   any
}

// New connects to every upstream, lists their tools and returns the
// proxy. Close it to disconnect.
func New(ctx context.Context, cfg *Config, opts Options) (*Proxy, error) {
	switch {
	case (opts.Guard == nil) == (opts.Decider == nil):
		return nil, errors.New("mcp: new: give one of Guard and Decider")
	case opts.Caller == nil:
		return nil, errors.New("mcp: new: Caller is required")
	case cfg == nil:
		return nil, errors.New("mcp: new: nil config")
	case opts.StateKey != nil && len(opts.StateKey) < 32:
		return nil, errors.New("mcp: new: StateKey shorter than 32 bytes")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mcp: new: %w", err)
	}
	opts.StateKey = slices.Clone(opts.StateKey)
	if opts.ApprovalWait <= 0 {
		opts.ApprovalWait = 30 * time.Second
	}
	if opts.Name == "" {
		opts.Name = "oars-mcp-proxy"
	}
	if opts.Version == "" {
		opts.Version = "v1"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Proxy{opts: opts, decider: opts.Decider, log: log, routes: map[string]*route{}}
	if opts.Guard != nil {
		p.decider = opts.Guard
	}
	p.server = sdk.NewServer(&sdk.Implementation{Name: opts.Name, Version: opts.Version}, &sdk.ServerOptions{
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}}, Logger: log,
	})
	p.server.AddReceivingMiddleware(p.filterList)
	for _, uc := range cfg.Upstreams {
		up := &upstream{cfg: uc}
		if err := p.connect(ctx, up); err != nil {
			_ = p.Close()
			return nil, err
		}
		p.ups = append(p.ups, up)
	}
	for _, up := range p.ups {
		if err := p.listUpstream(ctx, up); err != nil {
			_ = p.Close()
			return nil, err
		}
	}
	p.sync()
	return p, nil
}

// Server returns the downstream MCP server, to serve over any transport
// (stdio with [sdk.StdioTransport], or HTTP with [Proxy.Handler]).
func (p *Proxy) Server() *sdk.Server { return p.server }

// Close disconnects from the upstreams.
func (p *Proxy) Close() error {
	var errs []error
	for _, up := range p.ups {
		if up.session != nil {
			if err := up.session.Close(); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("mcp: close %s: %w", up.cfg.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// connect opens the session with an upstream.
func (p *Proxy) connect(ctx context.Context, up *upstream) error {
	client := sdk.NewClient(&sdk.Implementation{Name: p.opts.Name, Version: p.opts.Version}, &sdk.ClientOptions{
		Logger: p.log,
		ToolListChangedHandler: func(ctx context.Context, _ *sdk.ToolListChangedRequest) {
			// Off the client's read loop: listing is a request on the
			// same session.
			go func() {
				lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				if err := p.listUpstream(lctx, up); err != nil {
					p.log.Warn("mcp: relisting upstream tools failed", slog.String("upstream", up.cfg.Name), slog.Any("error", err))
					return
				}
				p.sync()
			}()
		},
		ProgressNotificationHandler: func(ctx context.Context, req *sdk.ProgressNotificationClientRequest) {
			key := fmt.Sprint(req.Params.ProgressToken)
			v, ok := p.progress.Load(key)
			if !ok {
				return
			}
			pr := v.(progressRoute)
			fwd := *req.Params
			fwd.ProgressToken = pr.token
			_ = pr.session.NotifyProgress(ctx, &fwd)
		},
	})
	var transport sdk.Transport
	if up.cfg.URL != "" {
		allow, err := egress.ParseAllow(up.cfg.AllowPrivate)
		if err != nil {
			return fmt.Errorf("mcp: upstream %s: %w", up.cfg.Name, err)
		}
		hc := egress.Policy{Allow: allow, Resolver: p.opts.Resolver}.Client(0)
		hc.Transport = &headerTransport{base: hc.Transport, up: up.cfg, secrets: p.opts.Secrets}
		transport = &sdk.StreamableClientTransport{Endpoint: up.cfg.URL, HTTPClient: hc, DisableStandaloneSSE: false}
	} else {
		cmd := exec.Command(up.cfg.Command, up.cfg.Args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, up.cfg.Env...)
		cmd.Stderr = os.Stderr
		transport = &sdk.CommandTransport{Command: cmd}
	}
	s, err := client.Connect(ctx, transport, nil)
	if err != nil {
		return fmt.Errorf("mcp: connect to upstream %s: %w", up.cfg.Name, err)
	}
	up.session = s
	return nil
}

// headerTransport adds an upstream's static and vault headers.
type headerTransport struct {
	base    http.RoundTripper
	up      Upstream
	secrets vault.Source
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.up.Headers {
		r.Header.Set(k, v)
	}
	for k, name := range t.up.HeaderSecrets {
		if t.secrets == nil {
			return nil, fmt.Errorf("mcp: upstream %s: header %s: no vault", t.up.Name, k)
		}
		v, err := t.secrets.Secret(r.Context(), name)
		if err != nil {
			return nil, fmt.Errorf("mcp: upstream %s: header %s: secret %q unavailable", t.up.Name, k, name)
		}
		r.Header.Set(k, string(v))
	}
	return t.base.RoundTrip(r)
}

// listUpstream reads an upstream's tools.
func (p *Proxy) listUpstream(ctx context.Context, up *upstream) error {
	var tools []*sdk.Tool
	for t, err := range up.session.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("mcp: list tools of %s: %w", up.cfg.Name, err)
		}
		tools = append(tools, t)
	}
	p.mu.Lock()
	up.tools = tools
	p.mu.Unlock()
	return nil
}

// sync rebuilds the downstream tool set from the upstreams' tools. Names
// unique across upstreams are kept; a name several upstreams offer is
// exposed as "<upstream>__<name>" for each of them (none keeps the bare
// name, so adding an upstream never silently re-routes a name).
func (p *Proxy) sync() {
	p.mu.Lock()
	count := map[string]int{}
	for _, up := range p.ups {
		for _, t := range up.tools {
			count[t.Name]++
		}
	}
	next := map[string]*route{}
	for _, up := range p.ups {
		for _, t := range up.tools {
			name := t.Name
			if count[name] > 1 {
				name = up.cfg.Name + "__" + t.Name
			}
			next[name] = &route{up: up, tool: t, name: name, hints: hints(up.cfg.Name, t.Annotations)}
		}
	}
	var removed []string
	for name := range p.routes {
		if _, ok := next[name]; !ok {
			removed = append(removed, name)
		}
	}
	names := make([]string, 0, len(next))
	for name := range next {
		names = append(names, name)
	}
	sort.Strings(names)
	p.routes = next
	p.mu.Unlock()

	if len(removed) > 0 {
		p.server.RemoveTools(removed...)
	}
	for _, name := range names {
		p.addTool(next[name])
	}
}

// addTool registers a route's tool downstream, passing its schema and
// annotations through unchanged; a tool the SDK would reject is skipped
// with a warning.
func (p *Proxy) addTool(r *route) {
	schema, err := json.Marshal(r.tool.InputSchema)
	if err != nil || !objectSchema(schema) {
		p.log.Warn("mcp: upstream tool skipped: its input schema is not an object schema",
			slog.String("upstream", r.up.cfg.Name), slog.String("tool", r.tool.Name))
		p.mu.Lock()
		delete(p.routes, r.name)
		p.mu.Unlock()
		return
	}
	t := &sdk.Tool{
		Name: r.name, Title: r.tool.Title, Description: r.tool.Description,
		InputSchema: json.RawMessage(schema), Annotations: r.tool.Annotations, Icons: r.tool.Icons,
	}
	if r.tool.OutputSchema != nil {
		if out, err := json.Marshal(r.tool.OutputSchema); err == nil {
			t.OutputSchema = json.RawMessage(out)
		}
	}
	defer func() {
		if v := recover(); v != nil {
			p.log.Warn("mcp: upstream tool skipped: the SDK refused it",
				slog.String("upstream", r.up.cfg.Name), slog.String("tool", r.tool.Name), slog.Any("reason", v))
			p.mu.Lock()
			delete(p.routes, r.name)
			p.mu.Unlock()
		}
	}()
	p.server.AddTool(t, p.handler(r.name))
}

// objectSchema reports whether schema is a JSON object whose type is
// "object".
func objectSchema(schema []byte) bool {
	var s struct {
		Type any `json:"type"`
	}
	if err := json.Unmarshal(schema, &s); err != nil {
		return false
	}
	return s.Type == "object"
}

func (p *Proxy) route(name string) *route {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.routes[name]
}

// filterList hides from tools/list the tools the caller could never
// call: those the caller's credential does not allow, and those the
// policies deny whatever the input when the Decider shows its policies
// (PolicySource).
func (p *Proxy) filterList(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		res, err := next(ctx, method, req)
		if err != nil || method != "tools/list" {
			return res, err
		}
		list, ok := res.(*sdk.ListToolsResult)
		if !ok {
			return res, nil
		}
		caller, err := p.opts.Caller(ctx, req.GetExtra())
		if err != nil {
			return nil, fmt.Errorf("mcp: tools/list: %w", err)
		}
		var set *policy.Set
		if ps, ok := p.decider.(PolicySource); ok {
			set = ps.Policies()
		}
		kept := list.Tools[:0:0]
		for _, t := range list.Tools {
			r := p.route(t.Name)
			if r == nil || caller.Allows != nil && !caller.Allows(r.up.cfg.Name, r.tool.Name) {
				continue
			}
			if set == nil {
				kept = append(kept, t)
				continue
			}
			in := &policy.Input{
				ToolID: r.up.cfg.Name, Operation: r.tool.Name,
				UserID: caller.UserID, Roles: caller.Roles, AgentID: caller.AgentID, TenantID: caller.TenantID,
				Time: time.Now().UTC(), Request: r.hints,
			}
			for _, h := range caller.Delegation {
				in.Delegation = append(in.Delegation, policy.Delegation{Subject: h.Subject, Issuer: h.Issuer, Scope: h.Scope})
			}
			hidden, err := set.NeverAllows(ctx, in, r.up.cfg.TargetArgument != "")
			if err != nil {
				p.log.Warn("mcp: listing check failed; tool listed", slog.String("tool", t.Name), slog.Any("error", err))
			}
			if !hidden {
				kept = append(kept, t)
			}
		}
		out := *list
		out.Tools = kept
		return &out, nil
	}
}

// hints are the annotations a of a tool of upstream as policies see them,
// in context.request: untrusted hints from the upstream.
func hints(upstream string, a *sdk.ToolAnnotations) map[string]string {
	h := map[string]string{"mcp_upstream": upstream}
	if a == nil {
		return h
	}
	h["mcp_read_only_hint"] = strconv.FormatBool(a.ReadOnlyHint)
	h["mcp_idempotent_hint"] = strconv.FormatBool(a.IdempotentHint)
	if a.DestructiveHint != nil {
		h["mcp_destructive_hint"] = strconv.FormatBool(*a.DestructiveHint)
	}
	if a.OpenWorldHint != nil {
		h["mcp_open_world_hint"] = strconv.FormatBool(*a.OpenWorldHint)
	}
	return h
}

// denied is the result of a call OARS refuses: an error the model can
// read, with the reasons and the receipt id.
func denied(msg string) *sdk.CallToolResult {
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: msg}}}
}

func deniedBy(out *oars.Outcome, what string) *sdk.CallToolResult {
	var reasons []string
	rid := ""
	if out != nil && len(out.Receipts) > 0 {
		last := out.Receipts[len(out.Receipts)-1].Receipt
		reasons, rid = last.Reasons, last.ReceiptID
		if len(reasons) == 0 {
			reasons = out.Receipts[0].Receipt.Reasons
		}
	}
	msg := "OARS " + what
	if len(reasons) > 0 {
		msg += ": " + strings.Join(reasons, "; ")
	}
	if rid != "" {
		msg += " (receipt " + rid + ")"
	}
	return denied(msg)
}

// handler returns the tool handler of downstream tool name.
func (p *Proxy) handler(name string) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		r := p.route(name)
		if r == nil {
			return nil, fmt.Errorf("mcp: unknown tool %q", name)
		}
		caller, err := p.opts.Caller(ctx, req.Extra)
		if err != nil {
			return nil, fmt.Errorf("mcp: %w", err)
		}
		args := req.Params.Arguments
		if len(args) == 0 || string(args) == "null" {
			args = json.RawMessage("{}")
		}
		// Only the top level is decoded here: the Decider decodes and
		// canonicalizes the whole input.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(args, &obj); err != nil {
			return nil, fmt.Errorf("mcp: tool %q: arguments are not a JSON object", name)
		}
		a := &oars.Action{
			TenantID: caller.TenantID, AgentID: caller.AgentID,
			Principal: oars.Principal{UserID: caller.UserID, Roles: caller.Roles, Delegation: caller.Delegation},
			Resource:  oars.Resource{ToolID: r.up.cfg.Name, Operation: r.tool.Name, Target: target(obj, r.up.cfg.TargetArgument)},
			Input:     args,
			Request:   r.hints,
		}
		if caller.Allows != nil && !caller.Allows(a.Resource.ToolID, a.Resource.Operation) {
			out, err := p.decider.Refuse(ctx, a, "the caller's credential does not allow "+a.Resource.ToolID+":"+a.Resource.Operation)
			if err != nil {
				return denied("OARS refused this call"), nil
			}
			return deniedBy(out, "refused this call"), nil
		}
		if req.Params.RequestState != "" {
			return p.resume(ctx, req, r, caller, a)
		}
		out, err := p.decider.Decide(ctx, a)
		switch {
		case errors.Is(err, oars.ErrInvalidAction):
			return nil, fmt.Errorf("mcp: tool %q: %w", name, err)
		case err != nil && (out == nil || len(out.Receipts) == 0):
			p.log.Error("mcp: deciding a call failed; denied", slog.String("tool", name), slog.Any("error", err))
			return denied("OARS could not decide this call; it was not run"), nil
		}
		switch out.Status {
		case receipt.StatusAllowed:
			return p.execute(ctx, req, r, a, out.ActionID)
		case receipt.StatusPendingApproval:
			return p.askApproval(caller, r, out)
		}
		return deniedBy(out, "denied this call"), nil
	}
}

// target returns the string (or number) value of argument arg, or "". A
// longer string than oars.MaxTargetLength is cut at a rune boundary.
func target(args map[string]json.RawMessage, arg string) string {
	raw, ok := args[arg]
	if arg == "" || !ok {
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		if len(v) > oars.MaxTargetLength {
			// v is valid UTF-8 (decoded JSON): only a rune cut in two
			// at the end is dropped.
			return strings.ToValidUTF8(v[:oars.MaxTargetLength], "")
		}
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// execute forwards a decided call to the upstream through the Guard,
// which claims it (executing) and records executed or failed.
func (p *Proxy) execute(ctx context.Context, req *sdk.CallToolRequest, r *route, a *oars.Action, actionID string) (*sdk.CallToolResult, error) {
	var res *sdk.CallToolResult
	var callErr error
	exec := func(ctx context.Context, _ *oars.Action) (json.RawMessage, error) {
		params := &sdk.CallToolParams{Name: r.tool.Name, Arguments: a.Input}
		if tok := req.Params.GetProgressToken(); tok != nil && req.Session != nil {
			key := "oars-" + strconv.FormatInt(p.tokens.Add(1), 10)
			params.SetProgressToken(key)
			p.progress.Store(key, progressRoute{session: req.Session, token: tok})
			// Notifications may be handled after the call returns: the
			// route outlives it a little.
			defer time.AfterFunc(progressGrace, func() { p.progress.Delete(key) })
		}
		res, callErr = r.up.session.CallTool(ctx, params)
		if callErr != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &connector.Error{Class: "upstream_error", Err: callErr}
		}
		delete(res.Meta, sdk.MetaKeyServerInfo) // the proxy's replaces it
		out, err := json.Marshal(struct {
			Content           []sdk.Content `json:"content"`
			StructuredContent any           `json:"structuredContent,omitempty"`
			IsError           bool          `json:"isError,omitempty"`
		}{res.Content, res.StructuredContent, res.IsError})
		if err != nil {
			return nil, &connector.Error{Class: "invalid_output", Err: err}
		}
		if res.IsError {
			return nil, &connector.Error{Class: "tool_error"}
		}
		return out, nil
	}
	out, err := p.decider.Execute(ctx, actionID, a, exec)
	switch {
	case res != nil:
		// The upstream's answer, recorded executed or failed, or else
		// (the ledger or the server failed) returned all the same: the
		// call has run.
		if err != nil && (out == nil || out.Status != receipt.StatusExecuted && out.Status != receipt.StatusFailed) {
			p.log.Error("mcp: the call ran but its result could not be recorded",
				slog.String("tool", r.name), slog.String("action_id", actionID), slog.Any("error", err))
		}
		return res, nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return nil, err
	case callErr != nil:
		return nil, fmt.Errorf("mcp: upstream %s: %w", r.up.cfg.Name, callErr)
	}
	return deniedBy(out, "could not run this call"), nil
}
