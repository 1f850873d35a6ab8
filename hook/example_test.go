package hook_test

import (
	"context"
	"fmt"
	"log"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/hook"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

const examplePolicy = `
id: coding
version: "1"
default: deny
rules:
  - id: no-rm
    when: action.operation == "shell" && action.target == "rm"
    effect: deny
    reason: deleting files is not allowed
  - id: shell
    when: action.operation == "shell"
    effect: allow
    reason: other commands may run
`

// Decide Claude Code's PreToolUse events with a policy, answering in
// Claude Code's hook protocol.
func ExampleHandle() {
	ctx := context.Background()
	pol, err := policy.Parse("coding.yaml", []byte(examplePolicy))
	if err != nil {
		log.Fatal(err)
	}
	set, err := policy.NewSet(pol)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := receipt.GenerateSigner()
	if err != nil {
		log.Fatal(err)
	}
	keys, err := receipt.NewKeySet(signer)
	if err != nil {
		log.Fatal(err)
	}
	l, err := ledger.New(ctx, ledger.NewMemStore())
	if err != nil {
		log.Fatal(err)
	}
	n := 0 // predictable receipt ids for the example; the default is UUIDv7
	g, err := oars.New(set, keys, l, oars.WithIDGenerator(func() string { n++; return fmt.Sprint("r", n) }))
	if err != nil {
		log.Fatal(err)
	}
	opts := hook.Options{Principal: oars.Principal{UserID: "alice"}}
	for _, command := range []string{"go test ./...", "rm -rf /"} {
		event := fmt.Sprintf(`{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash",
			"tool_input":{"command":%q},"tool_use_id":%q}`, command, command)
		ans := hook.Handle(ctx, g, hook.ClaudeCode, []byte(event), opts)
		fmt.Printf("exit %d: %s\n", ans.ExitCode, ans.Stdout)
	}
	// Output:
	// exit 0: {"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"OARS allowed this tool call: other commands may run (receipt r1)"}}
	// exit 0: {"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS denied this tool call: deleting files is not allowed (receipt r2)"}}
}
