package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"github.com/gowebpki/jcs"
	"go.yaml.in/yaml/v3"

	"github.com/oarsdev/oars/internal/yamlx"
)

// Effect is what a rule, a policy or a [Set] decides for an action.
type Effect string

// The effects a document may name. [EffectError] only appears in a
// [ShadowResult].
const (
	EffectAllow           Effect = "allow"
	EffectDeny            Effect = "deny"
	EffectRequireApproval Effect = "require_approval"
	// EffectError is the effect recorded in a [ShadowResult] whose policy
	// failed to evaluate. It is never a [Decision]'s effect and cannot be
	// written in a document.
	EffectError Effect = "error"
)

// rank orders effects for deny-overrides combining.
func (e Effect) rank() int {
	switch e {
	case EffectDeny:
		return 3
	case EffectRequireApproval:
		return 2
	case EffectAllow:
		return 1
	}
	return 0
}

// Mode says whether a policy's decision is enforced.
type Mode string

// The policy modes.
const (
	// ModeEnforce policies decide actions.
	ModeEnforce Mode = "enforce"
	// ModeShadow policies are evaluated and their would-be decision is
	// reported in [Decision.Shadow], but it never affects the effect.
	ModeShadow Mode = "shadow"
)

// MaxDocumentSize is the largest policy or test-case file accepted, in bytes.
const MaxDocumentSize = 1 << 20

// MaxRules is the largest number of rules a document may have.
const MaxRules = 1000

// DefaultApprovalExpiry is how long an approval request stays open when the
// rule does not say.
const DefaultApprovalExpiry = 24 * time.Hour

// Approval says who must approve an action held by a require_approval rule.
type Approval struct {
	// Roles are approver roles; holding any one of them qualifies.
	Roles []string
	// Users are approvers named by user id. When Roles and Users are both
	// empty, the approval service's own approver policy applies.
	Users []string
	// Quorum is the number of distinct approvers needed, at least 1.
	Quorum int
	// Expiry is how long the request stays open, greater than zero.
	Expiry time.Duration
	// StepUp reports whether approvers must present a second factor.
	StepUp bool
}

// Rule is one rule of a policy document.
type Rule struct {
	// ID is unique within the document.
	ID string
	// When is the rule's CEL condition, trimmed of surrounding space.
	When string
	// Effect is what the rule decides when When is true.
	Effect Effect
	// Reason explains the rule to people; it is written into receipts.
	Reason string
	// Approval is set exactly when Effect is [EffectRequireApproval], with
	// defaults filled in.
	Approval *Approval
}

// Policy is a parsed, validated and compiled policy document. Build one with
// [Parse], [LoadFile] or [LoadDir].
//
// The exported fields describe the document, with defaults filled in.
// Evaluation and [Policy.Digest] use a private copy made at parse time, so
// changing the fields afterwards changes neither. A Policy is safe for
// concurrent use.
type Policy struct {
	ID          string
	Version     string
	Description string
	// Default is the effect when no rule matches.
	Default Effect
	Mode    Mode
	// Tenants lists the tenants the policy applies to; empty means all.
	Tenants []string
	Rules   []Rule

	c *compiled
}

// compiled is the immutable form of a Policy that evaluation uses.
type compiled struct {
	id, version, digest string
	def                 Effect
	mode                Mode
	tenants             []string
	rules               []compiledRule
}

type compiledRule struct {
	id       string
	effect   Effect
	reason   string
	approval *Approval
	prg      cel.Program
	// fast, when set, is prg without runtime cost tracking, for inputs
	// within the size hints (see boundedSizes): the static cost estimate
	// under those hints is within MaxEvalCost, so tracking could not change
	// the outcome of an evaluation of such an input.
	fast cel.Program
	// loops reports whether the expression has a comprehension; only those
	// can run long enough to need in-evaluation cancellation checks.
	loops bool
	// caps are the capability ids the expression tests with
	// `"<id>" in agent.capabilities`.
	caps []string
	// usesInput reports whether the expression reads the action input;
	// then partial is the program planned for partial evaluation with
	// input unknown (see Set.NeverAllows).
	usesInput bool
	partial   cel.Program
	// usesTarget reports whether the expression reads action.target
	// (partial is then planned too).
	usesTarget bool
}

// Digest returns "sha256:<hex>" of the RFC 8785 canonical JSON of the
// normalized document (see the package documentation), computed at parse
// time. Two documents that differ only in spelling (key order, comments,
// quoting, defaults left out or written) have the same digest. It returns ""
// for a Policy not built by [Parse].
func (p *Policy) Digest() string {
	if p == nil || p.c == nil {
		return ""
	}
	return p.c.digest
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

const maxIDLen = 128

func validID(s string) bool { return len(s) <= maxIDLen && idPattern.MatchString(s) }

func validVersion(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func parseEffect(s string) (Effect, bool) {
	switch e := Effect(s); e {
	case EffectAllow, EffectDeny, EffectRequireApproval:
		return e, true
	}
	return "", false
}

// Parse parses, validates and compiles one policy document. name is used
// only in error messages (normally the file name). It returns a
// [*ParseError] naming the file, the rule, the key and the line when the
// document is larger than [MaxDocumentSize], is not exactly one YAML
// document, has unknown, duplicate or missing keys, values of the wrong type
// or out of range, aliases, or a `when` expression that does not compile to
// a bool (then the error wraps an [*ExprError] with the position within the
// expression).
func Parse(name string, data []byte) (*Policy, error) {
	w := newWalker(name)
	root, err := w.decodeSingle(data, MaxDocumentSize)
	if err != nil {
		return nil, err
	}
	p := &Policy{Default: EffectDeny, Mode: ModeEnforce}
	var rulesNode *yaml.Node
	err = w.Mapping(root, "", func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "id":
			if p.ID, err = w.Str(v, key); err == nil && !validID(p.ID) {
				err = w.Fail(v, key, "must match %s and be at most %d bytes", idPattern, maxIDLen)
			}
		case "version":
			if p.Version, err = w.Str(v, key); err == nil && !validVersion(p.Version) {
				err = w.Fail(v, key, "must be non-empty printable text without spaces, at most %d bytes", maxIDLen)
			}
		case "description":
			p.Description, err = w.Str(v, key)
		case "default":
			var s string
			if s, err = w.Str(v, key); err == nil {
				var ok bool
				if p.Default, ok = parseEffect(s); !ok {
					err = w.Fail(v, key, "must be allow, deny or require_approval")
				}
			}
		case "mode":
			var s string
			if s, err = w.Str(v, key); err == nil {
				switch Mode(s) {
				case ModeEnforce, ModeShadow:
					p.Mode = Mode(s)
				default:
					err = w.Fail(v, key, "must be enforce or shadow")
				}
			}
		case "tenants":
			p.Tenants, err = w.StrList(v, key, yamlx.NonEmpty|yamlx.Unique)
		case "rules":
			if v.Kind != yaml.SequenceNode {
				return w.Fail(v, key, "must be a list of rules, got %s", yamlx.KindName(v))
			}
			rulesNode = v
		default:
			return yamlx.ErrUnknownKey
		}
		return err
	})
	if err == nil {
		err = w.Require(root, "", "id", "version", "rules")
	}
	if err != nil {
		return nil, err
	}
	if len(rulesNode.Content) == 0 {
		return nil, w.Fail(rulesNode, "rules", "must have at least one rule")
	}
	if len(rulesNode.Content) > MaxRules {
		return nil, w.Fail(rulesNode, "rules", "has %d rules, more than the limit of %d", len(rulesNode.Content), MaxRules)
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("policy: build CEL environment: %w", err)
	}
	c := &compiled{
		id:      p.ID,
		version: p.Version,
		def:     p.Default,
		mode:    p.Mode,
		tenants: slices.Clone(p.Tenants),
	}
	ids := map[string]int{}
	for i, rn := range rulesNode.Content {
		r, cr, err := parseRule(w, env, i, rn)
		if err != nil {
			return nil, err
		}
		if first, dup := ids[r.ID]; dup {
			w.rule = r.ID
			return nil, w.Fail(rn, "id", "duplicate rule id (first at line %d)", first)
		}
		ids[r.ID] = rn.Line
		p.Rules = append(p.Rules, r)
		c.rules = append(c.rules, cr)
	}
	c.digest, err = digest(p)
	if err != nil {
		return nil, fmt.Errorf("policy: %s: digest: %w", name, err)
	}
	p.c = c
	return p, nil
}

// parseRule walks rules[i].
func parseRule(w *walker, env *cel.Env, i int, n *yaml.Node) (Rule, compiledRule, error) {
	w.rule = fmt.Sprintf("rules[%d]", i)
	defer func() { w.rule = "" }()
	// Name the rule by its id in every error, even those about keys that
	// come before it.
	if id, ok := yamlx.Peek(n, "id", validID); ok {
		w.rule = id
	}
	var r Rule
	var whenNode, approvalNode *yaml.Node
	err := w.Mapping(n, "", func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "id":
			if r.ID, err = w.Str(v, key); err == nil && !validID(r.ID) {
				err = w.Fail(v, key, "must match %s and be at most %d bytes", idPattern, maxIDLen)
			}
		case "when":
			if r.When, err = w.Str(v, key); err == nil {
				r.When = strings.TrimSpace(r.When)
				whenNode = v
				if r.When == "" {
					err = w.Fail(v, key, "must not be empty")
				}
			}
		case "effect":
			var s string
			if s, err = w.Str(v, key); err == nil {
				var ok bool
				if r.Effect, ok = parseEffect(s); !ok {
					err = w.Fail(v, key, "must be allow, deny or require_approval")
				}
			}
		case "reason":
			if r.Reason, err = w.Str(v, key); err == nil && strings.TrimSpace(r.Reason) == "" {
				err = w.Fail(v, key, "must not be empty")
			}
		case "approval":
			approvalNode = v
		default:
			return yamlx.ErrUnknownKey
		}
		return err
	})
	if err == nil {
		err = w.Require(n, "", "id", "when", "effect", "reason")
	}
	if err != nil {
		return Rule{}, compiledRule{}, err
	}
	switch {
	case r.Effect == EffectRequireApproval && approvalNode == nil:
		return Rule{}, compiledRule{}, w.Fail(n, "approval", "required with effect require_approval")
	case r.Effect != EffectRequireApproval && approvalNode != nil:
		return Rule{}, compiledRule{}, w.Fail(approvalNode, "approval", "only allowed with effect require_approval")
	case approvalNode != nil:
		if r.Approval, err = parseApproval(w, approvalNode); err != nil {
			return Rule{}, compiledRule{}, err
		}
	}
	cr := compiledRule{id: r.ID, effect: r.Effect, reason: r.Reason, approval: cloneApproval(r.Approval)}
	if err = compileWhen(env, r.When, &cr); err != nil {
		return Rule{}, compiledRule{}, w.ErrAt(whenNode, "when", err)
	}
	return r, cr, nil
}

func parseApproval(w *walker, n *yaml.Node) (*Approval, error) {
	a := &Approval{Quorum: 1, Expiry: DefaultApprovalExpiry}
	err := w.Mapping(n, "approval", func(key string, v *yaml.Node) error {
		path := "approval." + key
		var err error
		switch key {
		case "roles":
			a.Roles, err = w.StrList(v, path, yamlx.NonEmpty|yamlx.Unique)
		case "users":
			a.Users, err = w.StrList(v, path, yamlx.NonEmpty|yamlx.Unique)
		case "quorum":
			if a.Quorum, err = w.Int(v, path); err == nil && (a.Quorum < 1 || a.Quorum > 100) {
				err = w.Fail(v, path, "must be between 1 and 100")
			}
		case "expiry":
			var s string
			if s, err = w.Str(v, path); err == nil {
				if a.Expiry, err = time.ParseDuration(s); err != nil || a.Expiry <= 0 {
					err = w.Fail(v, path, "must be a positive Go duration such as 30m or 24h")
				}
			}
		case "step_up":
			a.StepUp, err = w.Bool(v, path)
		default:
			return yamlx.ErrUnknownKey
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(a.Roles) == 0 && len(a.Users) > 0 && a.Quorum > len(a.Users) {
		return nil, w.Fail(n, "approval.quorum", "quorum %d can never be met by the %d named users and no roles", a.Quorum, len(a.Users))
	}
	return a, nil
}

func cloneApproval(a *Approval) *Approval {
	if a == nil {
		return nil
	}
	c := *a
	c.Roles = slices.Clone(a.Roles)
	c.Users = slices.Clone(a.Users)
	return &c
}

// compileWhen compiles and type-checks a rule's expression and plans it for
// repeated evaluation, into cr.
func compileWhen(env *cel.Env, when string, cr *compiledRule) error {
	checked, iss := env.Compile(when)
	if iss != nil && iss.Err() != nil {
		return exprError(iss)
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		return &ExprError{Line: 1, Column: 1, Msg: fmt.Sprintf(
			"must be a bool expression, got %s (compare explicitly, e.g. input.flag == true)",
			checked.OutputType())}
	}
	loops, usesInput, shadows := false, false, false
	var caps []string
	ast.PostOrderVisit(checked.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.IdentKind:
			if e.AsIdent() == "input" {
				usesInput = true
			}
		case ast.SelectKind:
			sel := e.AsSelect()
			if op := sel.Operand(); sel.FieldName() == "target" && op.Kind() == ast.IdentKind && op.AsIdent() == "action" {
				cr.usesTarget = true
			}
		case ast.ComprehensionKind:
			loops = true
			c := e.AsComprehension()
			for _, v := range []string{c.IterVar(), c.IterVar2(), c.AccuVar()} {
				if topLevelVars[v] {
					shadows = true
				}
			}
		case ast.CallKind:
			if c, ok := capabilityTest(e); ok && !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}))
	opts := []cel.ProgramOption{
		cel.EvalOptions(cel.OptOptimize),
		cel.InterruptCheckFrequency(interruptCheckFrequency),
	}
	// cel-go's static estimate is an upper bound of the runtime cost. When
	// even the worst case stays within the limit, runtime cost tracking (a
	// third of the evaluation time) cannot change the outcome and is left
	// out. Expressions whose cost depends on the size of the input (string
	// functions, `in` over a list, comprehensions) have no useful static
	// bound and are always tracked.
	//
	// Many of the others (`"support" in principal.roles`, say) are bounded
	// once the sizes of the Guard's own fields are: for them a second,
	// untracked program runs when the input is within the size hints
	// (boundedSizes, withinSizeHints), and the tracked one otherwise.
	var fast cel.Program
	if est, err := env.EstimateCost(checked, noSizeHints{}); err != nil || est.Max > MaxEvalCost {
		// A loop variable named like a top-level variable would make a
		// path such as action.target name loop data, which the hints do
		// not bound.
		if est, err := env.EstimateCost(checked, boundedSizes{}); !shadows && err == nil && est.Max <= MaxEvalCost {
			if fast, err = env.Program(checked, opts...); err != nil {
				return &ExprError{Line: 1, Column: 1, Msg: err.Error()}
			}
		}
		opts = append(opts, cel.CostLimit(MaxEvalCost))
	}
	prg, err := env.Program(checked, opts...)
	if err != nil {
		return &ExprError{Line: 1, Column: 1, Msg: err.Error()}
	}
	cr.fast = fast
	cr.prg, cr.loops, cr.caps, cr.usesInput = prg, loops, caps, usesInput
	if usesInput || cr.usesTarget {
		popts := append([]cel.ProgramOption{cel.EvalOptions(cel.OptPartialEval), cel.CostLimit(MaxEvalCost)}, opts[1:]...)
		if cr.partial, err = env.Program(checked, popts...); err != nil {
			return &ExprError{Line: 1, Column: 1, Msg: err.Error()}
		}
	}
	return nil
}

// capabilityTest reports the capability id of an expression of the form
// "<id>" in agent.capabilities.
func capabilityTest(e ast.Expr) (string, bool) {
	call := e.AsCall()
	if call.FunctionName() != operators.In || len(call.Args()) != 2 {
		return "", false
	}
	lit, sel := call.Args()[0], call.Args()[1]
	if lit.Kind() != ast.LiteralKind || sel.Kind() != ast.SelectKind {
		return "", false
	}
	id, ok := lit.AsLiteral().Value().(string)
	if !ok || sel.AsSelect().FieldName() != "capabilities" {
		return "", false
	}
	op := sel.AsSelect().Operand()
	if op.Kind() != ast.IdentKind || op.AsIdent() != "agent" {
		return "", false
	}
	return id, true
}

// Capabilities returns the agent capability ids the policy's rules test
// with `"<id>" in agent.capabilities`, sorted. Servers publish them as the
// OAP discovery document's supported_capabilities.
func (p *Policy) Capabilities() []string {
	var caps []string
	for _, r := range p.c.rules {
		for _, c := range r.caps {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	slices.Sort(caps)
	return caps
}

// noSizeHints is a cost.Estimator that knows nothing about input sizes, so
// the estimate assumes the worst case.
type noSizeHints struct{}

func (noSizeHints) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (noSizeHints) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }

// sizeHintMax is the size boundedSizes assumes, at most, for each field it
// knows: bytes of a string (at least its code points, which CEL counts),
// entries of a list or map.
const sizeHintMax = 1024

// topLevelVars are the variables every expression may use.
var topLevelVars = map[string]bool{
	"action": true, "input": true, "principal": true, "agent": true, "tenant": true, "context": true,
}

// hintedFields are the fields of the Guard's own variables whose sizes
// boundedSizes bounds by sizeHintMax, and withinSizeHints checks.
var hintedFields = map[string]bool{
	"action.tool_id":        true,
	"action.operation":      true,
	"action.target":         true,
	"principal.user_id":     true,
	"principal.roles":       true,
	"principal.delegation":  true,
	"agent.id":              true,
	"agent.capabilities":    true,
	"agent.assurance_level": true,
	"tenant.id":             true,
	"context.request":       true,
}

// boundedSizes is a cost.Estimator that assumes every field of
// hintedFields holds at most sizeHintMax bytes or entries; everything else
// (input, list elements, delegation hops) stays unbounded. An estimate made
// with it holds only for inputs that withinSizeHints accepts.
type boundedSizes struct{}

func (boundedSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (boundedSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if p := n.Path(); len(p) == 2 && hintedFields[p[0]+"."+p[1]] {
		return &cost.SizeEstimate{Min: 0, Max: sizeHintMax}
	}
	return nil
}

// withinSizeHints reports whether every field of in that hintedFields names
// is within sizeHintMax, so that estimates made with boundedSizes hold.
func withinSizeHints(in *Input) bool {
	const m = sizeHintMax
	return len(in.ToolID) <= m && len(in.Operation) <= m && len(in.Target) <= m &&
		len(in.UserID) <= m && len(in.Roles) <= m && len(in.Delegation) <= m &&
		len(in.AgentID) <= m && len(in.Capabilities) <= m && len(in.AssuranceLevel) <= m &&
		len(in.TenantID) <= m && len(in.Request) <= m
}

// exprError converts cel-go issues to an ExprError at the first problem.
func exprError(iss *cel.Issues) *ExprError {
	errs := iss.Errors()
	if len(errs) == 0 {
		return &ExprError{Line: 1, Column: 1, Msg: iss.Err().Error()}
	}
	e := &ExprError{Line: errs[0].Location.Line(), Column: errs[0].Location.Column() + 1}
	if e.Line < 1 {
		e.Line, e.Column = 1, 1
	}
	msgs := make([]string, 0, min(len(errs), 3))
	for _, x := range errs[:min(len(errs), 3)] {
		msgs = append(msgs, x.Message)
	}
	if len(errs) > 3 {
		msgs = append(msgs, fmt.Sprintf("and %d more", len(errs)-3))
	}
	e.Msg = strings.Join(msgs, "; ")
	return e
}

// canonicalPolicy is the normalized document the digest is computed over.
type canonicalPolicy struct {
	ID          string          `json:"id"`
	Version     string          `json:"version"`
	Description string          `json:"description"`
	Default     Effect          `json:"default"`
	Mode        Mode            `json:"mode"`
	Tenants     []string        `json:"tenants"`
	Rules       []canonicalRule `json:"rules"`
}

type canonicalRule struct {
	ID       string             `json:"id"`
	When     string             `json:"when"`
	Effect   Effect             `json:"effect"`
	Reason   string             `json:"reason"`
	Approval *canonicalApproval `json:"approval"`
}

type canonicalApproval struct {
	Roles  []string `json:"roles"`
	Users  []string `json:"users"`
	Quorum int      `json:"quorum"`
	Expiry string   `json:"expiry"`
	StepUp bool     `json:"step_up"`
}

func sortedCopy(s []string) []string {
	c := append([]string{}, s...)
	slices.Sort(c)
	return c
}

// digest computes the digest of a validated policy.
func digest(p *Policy) (string, error) {
	cp := canonicalPolicy{
		ID:          p.ID,
		Version:     p.Version,
		Description: p.Description,
		Default:     p.Default,
		Mode:        p.Mode,
		Tenants:     sortedCopy(p.Tenants),
		Rules:       make([]canonicalRule, len(p.Rules)),
	}
	for i, r := range p.Rules {
		cr := canonicalRule{ID: r.ID, When: r.When, Effect: r.Effect, Reason: r.Reason}
		if a := r.Approval; a != nil {
			cr.Approval = &canonicalApproval{
				Roles:  sortedCopy(a.Roles),
				Users:  sortedCopy(a.Users),
				Quorum: a.Quorum,
				Expiry: a.Expiry.String(),
				StepUp: a.StepUp,
			}
		}
		cp.Rules[i] = cr
	}
	return canonicalDigest(cp)
}

// canonicalDigest returns "sha256:<hex>" over the RFC 8785 form of v's JSON.
func canonicalDigest(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	canon, err := jcs.Transform(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// LoadFile reads and parses the policy document at path; the path names the
// file in errors. It fails with a [*ParseError] as [Parse] does, and with the
// wrapped I/O error when the file cannot be read.
func LoadFile(path string) (*Policy, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// readFile reads at most MaxDocumentSize+1 bytes, so that an oversized file
// is rejected by the parser without reading it all.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: read: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", path, err)
	}
	return data, nil
}

// isTestFile reports whether name is a test-case file (*_test.yaml or
// *_test.yml).
func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
}

func isYAMLFile(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// LoadDir parses every policy document (*.yaml, *.yml) directly in dir, in
// file-name order, skipping test-case files (*_test.yaml, *_test.yml) and
// subdirectories. It fails when dir cannot be read, when it holds no policy
// document, or when any document is invalid; the error then joins the
// errors of every invalid file.
func LoadDir(dir string) ([]*Policy, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policy: load dir: %w", err)
	}
	var policies []*Policy
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !isYAMLFile(name) || isTestFile(name) {
			continue
		}
		p, err := LoadFile(filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		policies = append(policies, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(policies) == 0 {
		return nil, fmt.Errorf("policy: load dir %s: no policy documents (*.yaml, *.yml)", dir)
	}
	return policies, nil
}
