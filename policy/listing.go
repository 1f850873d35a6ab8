package policy

import (
	"context"
	"errors"
	"fmt"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// NeverAllows reports whether the enforcing policies deny every action
// with the resource, principal, agent, tenant and context of in whatever
// its input: the rules that read `input` are taken as unknown, the others
// are evaluated. It is for listing (an MCP proxy hides the tools a caller
// could never call); the decision on an actual action is still
// [Set.Evaluate]'s. in.Input is ignored.
//
// It returns true when no enforcing policy applies to the tenant, or some
// applicable policy surely denies: a deny rule that does not read input
// matches, or every allow and require_approval rule is known not to match
// and the policy's default is deny. An evaluation error is returned as
// is; callers should then list the tool and let the call-time decision
// fail closed. With unknownTarget, rules that read action.target are
// unknown too (the target is derived from the input, say).
func (s *Set) NeverAllows(ctx context.Context, in *Input, unknownTarget bool) (bool, error) {
	if s == nil || in == nil {
		return false, errors.New("policy: never allows: nil set or input")
	}
	probe := *in
	probe.Input = nil
	act := &activation{in: &probe}
	applies := false
	for _, c := range s.compiled {
		if !c.appliesTo(in.TenantID) || c.mode == ModeShadow {
			continue
		}
		applies = true
		denies, err := c.surelyDenies(ctx, act, unknownTarget)
		if err != nil {
			return false, err
		}
		if denies {
			return true, nil
		}
	}
	return !applies, nil
}

// surelyDenies reports whether policy c denies whatever the input.
func (c *compiled) surelyDenies(ctx context.Context, act *activation, unknownTarget bool) (bool, error) {
	othersFalse := true // every allow / require_approval rule is known false
	for i := range c.rules {
		r := &c.rules[i]
		known, ok, err := r.evalWithoutInput(ctx, act, unknownTarget)
		if err != nil {
			return false, &EvalError{PolicyID: c.id, RuleID: r.id, Err: fmt.Errorf("listing: %w", err)}
		}
		switch {
		case known && ok && r.effect == EffectDeny:
			return true, nil
		case (!known || ok) && r.effect != EffectDeny:
			othersFalse = false
		}
	}
	return othersFalse && c.def == EffectDeny, nil
}

// evalWithoutInput evaluates the rule with input unknown: known is false
// when the result depends on the input.
func (r *compiledRule) evalWithoutInput(ctx context.Context, act *activation, unknownTarget bool) (known, ok bool, err error) {
	if !r.usesInput && !(unknownTarget && r.usesTarget) {
		ok, err = r.eval(ctx, act)
		return true, ok, err
	}
	unknowns := inputUnknown
	if unknownTarget {
		unknowns = inputAndTargetUnknown
	}
	vars, err := interpreter.NewPartialActivation(withoutInput{act}, unknowns...)
	if err != nil {
		return false, false, err
	}
	out, _, err := r.partial.ContextEval(ctx, vars)
	if err != nil {
		// An error on an unknown-free path is an error; with input
		// unknown, cel-go reports unknowns as values, not errors.
		return false, false, err
	}
	if types.IsUnknown(out) {
		return false, false, nil
	}
	b, isBool := out.Value().(bool)
	if !isBool {
		return false, false, fmt.Errorf("result is %s, not a bool", out.Type())
	}
	return true, b, nil
}

// withoutInput is the activation with no value for input, which the
// partial activation marks unknown.
type withoutInput struct{ *activation }

var (
	inputUnknown          = []*interpreter.AttributePattern{interpreter.NewAttributePattern("input")}
	inputAndTargetUnknown = []*interpreter.AttributePattern{
		interpreter.NewAttributePattern("input"),
		interpreter.NewAttributePattern("action").QualString("target"),
	}
)

// ResolveName implements interpreter.Activation: input has no value.
func (p withoutInput) ResolveName(name string) (any, bool) {
	if name == "input" {
		return nil, false
	}
	return p.activation.ResolveName(name)
}
