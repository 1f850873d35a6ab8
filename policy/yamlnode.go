package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/oarsdev/oars/internal/yamlx"
)

// ParseError reports why a policy document or a test-case file was rejected.
// Its message names the file, the line (when known), the rule or test case
// and the key, for example:
//
//	policy: payments.yaml:12: rule "big-refunds": approval.quorum: must be an integer, got string
type ParseError struct {
	// File is the name the document was parsed under.
	File string
	// Line is the 1-based line in File, or 0 when unknown.
	Line int
	// Rule is the id of the rule the problem is in ("rules[2]" while the id
	// is unknown), or "".
	Rule string
	// Case is the name of the test case the problem is in ("cases[2]" while
	// the name is unknown), or "".
	Case string
	// Key is the key path of the offending value, such as
	// "approval.quorum", or "" when the problem is the document itself.
	Key string
	// Err is the problem. For a `when` expression that does not compile it
	// is an [*ExprError].
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	return yamlx.FormatError("policy", e.File, e.Line, e.Err, yamlx.Label("rule", e.Rule), yamlx.Label("case", e.Case), e.Key)
}

// Unwrap returns the underlying problem.
func (e *ParseError) Unwrap() error { return e.Err }

// ExprError is a compile or type-check error in a rule's `when` expression.
// Line and Column are 1-based and relative to the expression text, not the
// file.
type ExprError struct {
	Line, Column int
	// Msg is cel-go's description of the first problem; further problems,
	// if any, are appended after "; ".
	Msg string
}

// Error implements error.
func (e *ExprError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
}

// walker walks the yaml.Node tree of one file with a [yamlx.Walker] whose
// errors become [ParseError]s naming the file and the rule or case being
// walked.
type walker struct {
	yamlx.Walker
	file string
	rule string
	tc   string
}

func newWalker(file string) *walker {
	w := &walker{file: file}
	w.Wrap = func(e *yamlx.Error) error {
		return &ParseError{File: w.file, Line: e.Line, Rule: w.rule, Case: w.tc, Key: e.Key, Err: e.Err}
	}
	w.JSONTimestamps = true
	return w
}

// decodeSingle decodes data as exactly one YAML document of at most
// maxSize bytes and returns its root node.
func (w *walker) decodeSingle(data []byte, maxSize int) (*yaml.Node, error) {
	if len(data) > maxSize {
		return nil, w.Fail(nil, "", "document is %d bytes, larger than the %d byte limit", len(data), maxSize)
	}
	return w.DecodeSingle(data)
}
