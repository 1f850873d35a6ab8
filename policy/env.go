package policy

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// MaxEvalCost bounds the runtime cost of evaluating one rule's `when`
// expression, in cel-go cost units (roughly one unit per operation, more for
// string and list work). A typical rule costs well under 100; the limit only
// stops runaway comprehensions over large inputs. Exceeding it is an
// evaluation error (see [ErrCostLimit]).
const MaxEvalCost = 100_000

// MaxExpressionSize is the longest `when` expression accepted, in code
// points.
const MaxExpressionSize = 16 << 10

// interruptCheckFrequency is how many comprehension iterations run between
// checks of the evaluation context's Done channel.
const interruptCheckFrequency = 100

// CEL object type names of the typed variables. They are visible in CEL
// (for example in type errors) but a policy never needs to spell them.
const (
	actionTypeName     = "oars.Action"
	principalTypeName  = "oars.Principal"
	delegationTypeName = "oars.Delegation"
	agentTypeName      = "oars.Agent"
	tenantTypeName     = "oars.Tenant"
	contextTypeName    = "oars.Context"
)

// field describes one field of a CEL object backed by a Go value of type T.
type field[T any] struct {
	name  string
	typ   *types.Type
	isSet func(*T) bool
	get   func(*T) ref.Val
}

// objectDesc describes a CEL object type backed by a Go value of type T. It
// is immutable once built.
type objectDesc[T any] struct {
	name   string
	typ    *types.Type
	fields []field[T]
}

func (d *objectDesc[T]) field(name string) (*field[T], bool) {
	for i := range d.fields {
		if d.fields[i].name == name {
			return &d.fields[i], true
		}
	}
	return nil, false
}

// structType is the type-erased view of an objectDesc that the type provider
// needs.
type structType interface {
	celType() *types.Type
	fieldNames() []string
	fieldType(name string) (*types.FieldType, bool)
}

func (d *objectDesc[T]) celType() *types.Type { return d.typ }

func (d *objectDesc[T]) fieldNames() []string {
	names := make([]string, len(d.fields))
	for i, f := range d.fields {
		names[i] = f.name
	}
	return names
}

func (d *objectDesc[T]) fieldType(name string) (*types.FieldType, bool) {
	f, ok := d.field(name)
	if !ok {
		return nil, false
	}
	return &types.FieldType{
		Type: f.typ,
		IsSet: func(target any) bool {
			p, ok := target.(*T)
			return ok && p != nil && f.isSet(p)
		},
		GetFrom: func(target any) (any, error) {
			p, ok := target.(*T)
			if !ok || p == nil {
				return nil, fmt.Errorf("no such field: %s on %s", f.name, d.name)
			}
			return f.get(p), nil
		},
	}, true
}

// kind names one objectDesc at the type level, so that object values are a
// single pointer wide and cost no allocation when stored in an interface.
type kind[T any] interface {
	desc() *objectDesc[T]
}

type (
	actionKind     struct{}
	principalKind  struct{}
	delegationKind struct{}
	agentKind      struct{}
	tenantKind     struct{}
	contextKind    struct{}
)

func (actionKind) desc() *objectDesc[activation]     { return &actionDesc }
func (principalKind) desc() *objectDesc[activation]  { return &principalDesc }
func (delegationKind) desc() *objectDesc[Delegation] { return &delegationDesc }
func (agentKind) desc() *objectDesc[activation]      { return &agentDesc }
func (tenantKind) desc() *objectDesc[activation]     { return &tenantDesc }
func (contextKind) desc() *objectDesc[activation]    { return &contextDesc }

// object is a CEL value for a typed variable such as `action` or `principal`,
// reading its fields straight from the Go value on access.
type object[T any, K kind[T]] struct{ p *T }

var (
	_ ref.Val = object[activation, actionKind]{}
	_ interface {
		Get(ref.Val) ref.Val
		IsSet(ref.Val) ref.Val
	} = object[activation, actionKind]{}
)

func (o object[T, K]) desc() *objectDesc[T] {
	var k K
	return k.desc()
}

// ConvertToNative implements ref.Val. The OARS objects have no native form.
func (o object[T, K]) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return nil, fmt.Errorf("type conversion error from %s to %v", o.desc().name, typeDesc)
}

// ConvertToType implements ref.Val.
func (o object[T, K]) ConvertToType(typeVal ref.Type) ref.Val {
	d := o.desc()
	switch typeVal {
	case types.TypeType:
		return d.typ
	}
	if typeVal.TypeName() == d.name {
		return o
	}
	return types.NewErr("type conversion error from '%s' to '%s'", d.name, typeVal.TypeName())
}

// Equal implements ref.Val: two objects are equal when all fields are equal.
func (o object[T, K]) Equal(other ref.Val) ref.Val {
	oo, ok := other.(object[T, K])
	if !ok {
		return types.False
	}
	if o.p == oo.p {
		return types.True
	}
	if o.p == nil || oo.p == nil {
		return types.False
	}
	for _, f := range o.desc().fields {
		if f.get(o.p).Equal(f.get(oo.p)) != types.True {
			return types.False
		}
	}
	return types.True
}

// Type implements ref.Val.
func (o object[T, K]) Type() ref.Type { return o.desc().typ }

// Value implements ref.Val; it returns the backing pointer, which the field
// accessors of the type provider read.
func (o object[T, K]) Value() any { return o.p }

// Get implements traits.Indexer.
func (o object[T, K]) Get(index ref.Val) ref.Val {
	d := o.desc()
	name, ok := index.(types.String)
	if !ok {
		return types.ValOrErr(index, "no such overload")
	}
	f, ok := d.field(string(name))
	if !ok || o.p == nil {
		return types.NewErr("no such field: %s", string(name))
	}
	return f.get(o.p)
}

// IsSet implements traits.FieldTester: a field is set when it is not the
// zero value (empty string, empty list or map, zero time).
func (o object[T, K]) IsSet(index ref.Val) ref.Val {
	d := o.desc()
	name, ok := index.(types.String)
	if !ok {
		return types.ValOrErr(index, "no such overload")
	}
	f, ok := d.field(string(name))
	if !ok {
		return types.NewErr("no such field: %s", string(name))
	}
	return types.Bool(o.p != nil && f.isSet(o.p))
}

// Slots of activation.cache, one per field of the Input-backed objects.
const (
	slotToolID = iota
	slotOperation
	slotTarget
	slotUserID
	slotRoles
	slotDelegation
	slotAgentID
	slotTenantID
	slotTime
	slotRequest
	slotCapabilities
	slotAssurance
	numSlots
)

// cached makes a field of an Input-backed object whose value is computed
// once per evaluation and shared by every rule.
func cached(name string, slot int, typ *types.Type, isSet func(*Input) bool, get func(*Input) ref.Val) field[activation] {
	return field[activation]{
		name:  name,
		typ:   typ,
		isSet: func(a *activation) bool { return isSet(a.in) },
		get: func(a *activation) ref.Val {
			if v := a.cache[slot]; v != nil {
				return v
			}
			v := get(a.in)
			a.cache[slot] = v
			return v
		},
	}
}

func cachedStr(name string, slot int, get func(*Input) string) field[activation] {
	return cached(name, slot, types.StringType,
		func(in *Input) bool { return get(in) != "" },
		func(in *Input) ref.Val { return types.String(get(in)) })
}

func strField[T any](name string, get func(*T) string) field[T] {
	return field[T]{
		name:  name,
		typ:   types.StringType,
		isSet: func(p *T) bool { return get(p) != "" },
		get:   func(p *T) ref.Val { return types.String(get(p)) },
	}
}

var stringList = types.NewListType(types.StringType)

// The descriptors are immutable tables, built without init().
var (
	actionDesc = objectDesc[activation]{
		name: actionTypeName,
		typ:  types.NewObjectType(actionTypeName),
		fields: []field[activation]{
			cachedStr("tool_id", slotToolID, func(in *Input) string { return in.ToolID }),
			cachedStr("operation", slotOperation, func(in *Input) string { return in.Operation }),
			cachedStr("target", slotTarget, func(in *Input) string { return in.Target }),
		},
	}
	principalDesc = objectDesc[activation]{
		name: principalTypeName,
		typ:  types.NewObjectType(principalTypeName),
		fields: []field[activation]{
			cachedStr("user_id", slotUserID, func(in *Input) string { return in.UserID }),
			cached("roles", slotRoles, stringList,
				func(in *Input) bool { return len(in.Roles) > 0 },
				func(in *Input) ref.Val { return stringListOf(in.Roles) }),
			cached("delegation", slotDelegation, types.NewListType(types.NewObjectType(delegationTypeName)),
				func(in *Input) bool { return len(in.Delegation) > 0 },
				delegationList),
		},
	}
	delegationDesc = objectDesc[Delegation]{
		name: delegationTypeName,
		typ:  types.NewObjectType(delegationTypeName),
		fields: []field[Delegation]{
			strField("sub", func(d *Delegation) string { return d.Subject }),
			strField("iss", func(d *Delegation) string { return d.Issuer }),
			{
				name:  "scope",
				typ:   stringList,
				isSet: func(d *Delegation) bool { return len(d.Scope) > 0 },
				get:   func(d *Delegation) ref.Val { return stringListOf(d.Scope) },
			},
		},
	}
	agentDesc = objectDesc[activation]{
		name: agentTypeName,
		typ:  types.NewObjectType(agentTypeName),
		fields: []field[activation]{
			cachedStr("id", slotAgentID, func(in *Input) string { return in.AgentID }),
			cached("capabilities", slotCapabilities, stringList,
				func(in *Input) bool { return len(in.Capabilities) > 0 },
				func(in *Input) ref.Val { return stringListOf(in.Capabilities) }),
			cachedStr("assurance_level", slotAssurance, func(in *Input) string { return in.AssuranceLevel }),
		},
	}
	tenantDesc = objectDesc[activation]{
		name: tenantTypeName,
		typ:  types.NewObjectType(tenantTypeName),
		fields: []field[activation]{
			cachedStr("id", slotTenantID, func(in *Input) string { return in.TenantID }),
		},
	}
	contextDesc = objectDesc[activation]{
		name: contextTypeName,
		typ:  types.NewObjectType(contextTypeName),
		fields: []field[activation]{
			cached("time", slotTime, types.TimestampType,
				func(in *Input) bool { return !in.Time.IsZero() },
				func(in *Input) ref.Val { return types.Timestamp{Time: in.Time} }),
			cached("request", slotRequest, types.NewMapType(types.StringType, types.StringType),
				func(in *Input) bool { return len(in.Request) > 0 },
				func(in *Input) ref.Val { return types.NewStringStringMap(types.DefaultTypeAdapter, in.Request) }),
		},
	}
)

// noStrings is the value of an empty list of strings, which every
// evaluation shares (CEL lists are immutable).
var noStrings = types.NewStringList(types.DefaultTypeAdapter, []string{})

// stringListOf returns the CEL list of ss.
func stringListOf(ss []string) ref.Val {
	if len(ss) == 0 {
		return noStrings
	}
	return types.NewStringList(types.DefaultTypeAdapter, ss)
}

// noDelegation is principal.delegation of an action without delegation.
// CEL lists are immutable, so every evaluation shares it.
var noDelegation = types.NewRefValList(types.DefaultTypeAdapter, []ref.Val{})

func delegationList(in *Input) ref.Val {
	if len(in.Delegation) == 0 {
		return noDelegation
	}
	vals := make([]ref.Val, len(in.Delegation))
	for i := range in.Delegation {
		vals[i] = object[Delegation, delegationKind]{&in.Delegation[i]}
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

// provider adds the OARS object types to a base cel-go type provider.
type provider struct {
	types.Provider
	structs map[string]structType
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if s, ok := p.structs[name]; ok {
		return types.NewTypeTypeWithParam(s.celType()), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if s, ok := p.structs[name]; ok {
		return s.fieldNames(), true
	}
	return p.Provider.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *provider) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	if s, ok := p.structs[name]; ok {
		return s.fieldType(fieldName)
	}
	return p.Provider.FindStructFieldType(name, fieldName)
}

// NewValue implements types.Provider. The OARS types describe the action
// under evaluation and cannot be constructed in an expression.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.structs[name]; ok {
		return types.NewErr("%s values cannot be constructed", name)
	}
	return p.Provider.NewValue(name, fields)
}

func withOARSTypes() cel.EnvOption {
	return func(env *cel.Env) (*cel.Env, error) {
		p := &provider{
			Provider: env.CELTypeProvider(),
			structs: map[string]structType{
				actionTypeName:     &actionDesc,
				principalTypeName:  &principalDesc,
				delegationTypeName: &delegationDesc,
				agentTypeName:      &agentDesc,
				tenantTypeName:     &tenantDesc,
				contextTypeName:    &contextDesc,
			},
		}
		return cel.CustomTypeProvider(p)(env)
	}
}

// environment returns the shared, immutable CEL environment every policy
// compiles against. It is built once, on first use.
var environment = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		withOARSTypes(),
		cel.Variable("action", cel.ObjectType(actionTypeName)),
		cel.Variable("input", cel.DynType),
		cel.Variable("principal", cel.ObjectType(principalTypeName)),
		cel.Variable("agent", cel.ObjectType(agentTypeName)),
		cel.Variable("tenant", cel.ObjectType(tenantTypeName)),
		cel.Variable("context", cel.ObjectType(contextTypeName)),
		cel.ParserExpressionSizeLimit(MaxExpressionSize),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
	)
})

// activation resolves the variables of one evaluation straight from an
// [Input]. Field values are computed on first use and shared by every rule
// of the evaluation; `input` is handed to cel-go as the decoded Go value,
// which it reads without copying. It is not safe for concurrent use;
// Evaluate makes one per call.
type activation struct {
	in    *Input
	cache [numSlots]ref.Val
	// bounded reports withinSizeHints(in): rules may run their fast
	// programs.
	bounded bool
}

var _ interpreter.Activation = (*activation)(nil)

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "action":
		return object[activation, actionKind]{a}, true
	case "input":
		if a.in.Input == nil {
			// An action without input is an empty object, so that
			// has(input.x) is false rather than an error.
			return emptyInput, true
		}
		return a.in.Input, true
	case "principal":
		return object[activation, principalKind]{a}, true
	case "agent":
		return object[activation, agentKind]{a}, true
	case "tenant":
		return object[activation, tenantKind]{a}, true
	case "context":
		return object[activation, contextKind]{a}, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

var emptyInput = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{})

// errNotBool is returned when a rule evaluates to something other than a
// bool, which the type checker rules out for every well-typed input.
var errNotBool = errors.New("result is not a bool")
