package connector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector"
)

func echo(name string, schema string) connector.FuncOp {
	return connector.FuncOp{
		Operation: connector.Operation{Name: name, InputSchema: json.RawMessage(schema)},
		Run: func(_ context.Context, req *connector.Request) (json.RawMessage, error) {
			return req.Input, nil
		},
	}
}

func TestRegisterRefusesInvalidConnectors(t *testing.T) {
	good, err := connector.NewFunc(echo("get", ""))
	require.NoError(t, err)
	badSchema, err := connector.NewFunc(echo("get", `{"type":"array"}`))
	require.NoError(t, err)
	notSchema, err := connector.NewFunc(echo("get", `{"type":7}`))
	require.NoError(t, err)
	unnamed, err := connector.NewFunc(echo("", ""))
	require.NoError(t, err)
	empty, err := connector.NewFunc()
	require.NoError(t, err)
	tests := []struct {
		name string
		id   string
		c    connector.Connector
	}{
		{"empty id", "", good},
		{"control character in id", "a\nb", good},
		{"nil connector", "t", nil},
		{"non-object schema", "t", badSchema},
		{"malformed schema", "t", notSchema},
		{"unnamed operation", "t", unnamed},
		{"no operations", "t", empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := connector.NewRegistry().Register(tt.id, tt.c)
			require.ErrorIs(t, err, connector.ErrInvalidConnector)
		})
	}
	reg := connector.NewRegistry()
	require.NoError(t, reg.Register("t", good))
	require.ErrorIs(t, reg.Register("t", good), connector.ErrInvalidConnector, "duplicate tool")

	_, err = connector.NewFunc(echo("a", ""), echo("a", ""))
	require.ErrorIs(t, err, connector.ErrInvalidConnector, "duplicate operation")
	_, err = connector.NewFunc(connector.FuncOp{Operation: connector.Operation{Name: "x"}})
	require.ErrorIs(t, err, connector.ErrInvalidConnector, "nil Run")
}

func TestCheck(t *testing.T) {
	fn, err := connector.NewFunc(
		echo("create", `{"type":"object","required":["title"],"properties":{"title":{"type":"string","maxLength":10},"n":{"type":"integer"}},"additionalProperties":false}`),
		echo("any", ""),
	)
	require.NoError(t, err)
	reg := connector.NewRegistry()
	require.NoError(t, reg.Register("tickets", fn))
	tests := []struct {
		tool, op, input string
		want            error
	}{
		{"tickets", "create", `{"title":"hi"}`, nil},
		{"tickets", "create", `{"title":"hi","n":3}`, nil},
		{"tickets", "create", `{"title":"a very long title"}`, connector.ErrInvalidInput},
		{"tickets", "create", `{"title":1}`, connector.ErrInvalidInput},
		{"tickets", "create", `{"n":1.5,"title":"x"}`, connector.ErrInvalidInput},
		{"tickets", "create", `{}`, connector.ErrInvalidInput},
		{"tickets", "create", `{"title":"x","extra":true}`, connector.ErrInvalidInput},
		{"tickets", "any", `{"whatever":[1,2]}`, nil},
		{"tickets", "any", ``, nil},
		{"tickets", "any", `[1]`, connector.ErrInvalidInput},
		{"tickets", "any", `{`, connector.ErrInvalidInput},
		{"tickets", "delete", `{}`, connector.ErrUnknownOperation},
		{"shell", "run", `{}`, connector.ErrUnknownTool},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s.%s %s", tt.tool, tt.op, tt.input), func(t *testing.T) {
			err := reg.Check(tt.tool, tt.op, json.RawMessage(tt.input))
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
	assert.True(t, reg.Serves("tickets"), "registered")
	assert.False(t, reg.Serves("shell"), "not registered")
	reg.Allow([]string{"other"})
	require.ErrorIs(t, reg.Check("tickets", "any", nil), connector.ErrUnknownTool)
	assert.Empty(t, reg.Tools())
	assert.False(t, reg.Serves("tickets"), "registered but not allowed")
	reg.Allow(nil)
	assert.Equal(t, []string{"tickets"}, reg.Tools())
	var none *connector.Registry
	assert.False(t, none.Serves("tickets"), "nil registry")
}

func TestExecuteAndErrors(t *testing.T) {
	fail := &connector.Error{Class: "upstream_5xx", UpstreamStatus: 502, Retryable: true, Err: errors.New("bad gateway")}
	fn, err := connector.NewFunc(connector.FuncOp{
		Operation: connector.Operation{Name: "get", Idempotent: true},
		Run: func(context.Context, *connector.Request) (json.RawMessage, error) {
			return nil, fmt.Errorf("wrapped: %w", fail)
		},
	})
	require.NoError(t, err)
	reg := connector.NewRegistry()
	require.NoError(t, reg.Register("t", fn))
	_, err = reg.Execute(context.Background(), &connector.Request{ToolID: "t", Operation: "get"})
	require.ErrorIs(t, err, fail)
	assert.True(t, connector.IsRetryable(err))
	assert.Equal(t, 502, connector.UpstreamStatusOf(err))
	assert.Equal(t, "connector: upstream_5xx (upstream status 502): bad gateway", fail.Error())
	assert.True(t, reg.Idempotent("t", "get"))
	assert.False(t, reg.Idempotent("t", "put"))
	assert.False(t, connector.IsRetryable(errors.New("plain")))
	tool, err := reg.Tool("t")
	require.NoError(t, err)
	op, ok := tool.Operation("get")
	require.True(t, ok)
	assert.True(t, op.Idempotent)
	assert.Len(t, tool.Operations(), 1)
}

// Example registers a Go function as a tool. A Guard built with
// oars.WithConnectors(reg) then refuses actions on other tools or with
// input that does not match the schema, and runs allowed ones with it.
func Example() {
	lookup, err := connector.NewFunc(connector.FuncOp{
		Operation: connector.Operation{
			Name:        "lookup",
			Description: "Look up a customer",
			InputSchema: json.RawMessage(`{"type":"object","required":["email"],"properties":{"email":{"type":"string"}}}`),
			Idempotent:  true,
		},
		Run: func(_ context.Context, req *connector.Request) (json.RawMessage, error) {
			return json.RawMessage(`{"customer_id":"c_42"}`), nil
		},
	})
	if err != nil {
		panic(err)
	}
	reg := connector.NewRegistry()
	if err := reg.Register("crm", lookup); err != nil {
		panic(err)
	}
	fmt.Println(reg.Check("crm", "lookup", json.RawMessage(`{"email":"a@example.com"}`)))
	fmt.Println(errors.Is(reg.Check("crm", "lookup", json.RawMessage(`{}`)), connector.ErrInvalidInput))
	// Output:
	// <nil>
	// true
}
