package policy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEvaluatePassportFields(t *testing.T) {
	p := pol(t, "caps", "",
		rl{id: "refund-capable", when: `"finance.payment.refund" in agent.capabilities && agent.assurance_level in ["L3", "L4KYC", "L4FIN"]`, effect: EffectAllow},
		rl{id: "no-passport", when: `!has(agent.capabilities) && agent.assurance_level == ""`, effect: EffectRequireApproval},
	)
	s := set(t, p)
	tests := []struct {
		name  string
		caps  []string
		level string
		want  Effect
	}{
		{"capable and assured", []string{"data.export", "finance.payment.refund"}, "L3", EffectAllow},
		{"capable, assurance too low", []string{"finance.payment.refund"}, "L1", EffectDeny},
		{"assured, lacks capability", []string{"data.export"}, "L4FIN", EffectDeny},
		{"no passport", nil, "", EffectRequireApproval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := acme()
			in.Capabilities, in.AssuranceLevel = tt.caps, tt.level
			dec, err := s.Evaluate(context.Background(), in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, dec.Effect, "Evaluate(caps %v, level %q).Effect", tt.caps, tt.level)
		})
	}
}

func TestPassportFieldsTypeChecked(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("id: bad\nversion: \"1\"\nrules:\n  - id: r\n    when: \"agent.capabilities == 'x'\"\n    effect: deny\n    reason: r\n"))
	assert.Error(t, err, "Parse(agent.capabilities == string) = nil error, want a type error")
}

func TestCapabilities(t *testing.T) {
	p := pol(t, "caps", "",
		rl{id: "a", when: `"finance.payment.refund" in agent.capabilities && "data.export" in agent.capabilities`, effect: EffectAllow},
		rl{id: "b", when: `"data.export" in agent.capabilities || "x" in principal.roles`, effect: EffectDeny},
	)
	q := pol(t, "other", "",
		rl{id: "c", when: `"messaging.send" in agent.capabilities`, effect: EffectAllow},
	)
	assert.Equal(t, []string{"data.export", "finance.payment.refund"}, p.Capabilities())
	assert.Equal(t, []string{"data.export", "finance.payment.refund", "messaging.send"}, set(t, p, q).Capabilities())
	assert.Empty(t, pol(t, "none", "", rl{id: "n", when: `action.tool_id == "x"`, effect: EffectAllow}).Capabilities())
}
