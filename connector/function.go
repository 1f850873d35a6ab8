package connector

import (
	"context"
	"encoding/json"
	"fmt"
)

// FuncOp is one operation of a [Func] connector: its description and the
// Go function that runs it.
type FuncOp struct {
	Operation
	// Run executes the operation. Its output is recorded as the output
	// digest; return an [*Error] to classify a failure.
	Run func(ctx context.Context, req *Request) (json.RawMessage, error)
	// Summary, when set, extracts the redacted summary recorded in the
	// executed receipt from the output. It must return a JSON object or
	// nil.
	Summary func(output json.RawMessage) json.RawMessage
}

// Func is a connector made of Go functions: the in-process path, how a
// host application registers its own tools with a Guard.
type Func struct {
	ops   []Operation
	funcs map[string]FuncOp
}

// NewFunc returns a connector offering ops. It fails if an operation has
// no Run function or is listed twice.
func NewFunc(ops ...FuncOp) (*Func, error) {
	f := &Func{funcs: make(map[string]FuncOp, len(ops))}
	for _, op := range ops {
		if op.Run == nil {
			return nil, fmt.Errorf("%w: operation %q: nil Run", ErrInvalidConnector, op.Name)
		}
		if _, dup := f.funcs[op.Name]; dup {
			return nil, fmt.Errorf("%w: operation %q listed twice", ErrInvalidConnector, op.Name)
		}
		f.funcs[op.Name] = op
		f.ops = append(f.ops, op.Operation)
	}
	return f, nil
}

// Operations implements [Connector].
func (f *Func) Operations() []Operation { return f.ops }

// Execute implements [Connector].
func (f *Func) Execute(ctx context.Context, req *Request) (*Result, error) {
	op, ok := f.funcs[req.Operation]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownOperation, req.Operation)
	}
	out, err := op.Run(ctx, req)
	if err != nil {
		return nil, err
	}
	res := &Result{Output: out}
	if op.Summary != nil {
		res.Summary = op.Summary(out)
	}
	return res, nil
}
