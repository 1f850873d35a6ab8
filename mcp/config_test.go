package mcp_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/mcp"
	"github.com/oarsdev/oars/policy"
)

func TestExampleConfig(t *testing.T) {
	c, err := mcp.LoadConfig("../examples/mcp-proxy/mcp.yaml")
	require.NoError(t, err)
	require.Len(t, c.Upstreams, 2)
	assert.Equal(t, "github/authorization", c.Upstreams[0].HeaderSecrets["Authorization"])
	assert.Equal(t, "path", c.Upstreams[1].TargetArgument)

	p, err := policy.LoadFile("../examples/mcp-proxy/policy.yaml")
	require.NoError(t, err)
	_, err = policy.NewSet(p)
	require.NoError(t, err, "the example's policy compiles")
}

func TestConfigErrors(t *testing.T) {
	tests := map[string]string{
		"empty":            ``,
		"unknown key":      "upstreams:\n  - name: a\n    url: https://x.example\n    urll: y\n",
		"bad name":         "upstreams:\n  - name: A B\n    url: https://x.example\n",
		"duplicate":        "upstreams:\n  - name: a\n    url: https://x.example\n  - name: a\n    command: x\n",
		"both":             "upstreams:\n  - name: a\n    url: https://x.example\n    command: x\n",
		"neither":          "upstreams:\n  - name: a\n",
		"credentials":      "upstreams:\n  - name: a\n    url: https://u:p@x.example\n",
		"scheme":           "upstreams:\n  - name: a\n    url: ftp://x.example\n",
		"bad allowance":    "upstreams:\n  - name: a\n    url: https://x.example\n    allow_private: [nonsense]\n",
		"wrong type":       "upstreams: 7\n",
		"two documents":    "upstreams:\n  - name: a\n    url: https://x.example\n---\nupstreams: []\n",
		"no upstreams key": "upstream:\n  - name: a\n",
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := mcp.ParseConfig([]byte(src), "mcp.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "mcp.yaml")
		})
	}
}
