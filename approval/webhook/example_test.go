package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/approval/webhook"
	"github.com/oarsdev/oars/receipt"
)

func ExampleNotifier() {
	secret := []byte("shared-secret-of-at-least-16-bytes")

	// The receiver: check the signature over the raw body, then decode.
	got := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		err = webhook.VerifySignature(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			got <- "refused: " + err.Error()
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			got <- "bad body: " + err.Error()
			return
		}
		w.WriteHeader(http.StatusNoContent)
		got <- p.Type + " " + p.ActionID + "\n" + p.Links.Decision
	}))
	defer receiver.Close()

	// The sender: the host runs the Notifier for its lifetime.
	n, err := webhook.New(receiver.URL, secret, "https://oars.example.com")
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()

	err = n.Notify(ctx, approval.Request{
		ActionID: "act-1", TenantID: "acme", AgentID: "billing-agent", RequesterUserID: "alice",
		Resource:    receipt.Resource{ToolID: "payments", Operation: "refund"},
		Requirement: approval.Requirement{Roles: []string{"finance"}, Quorum: 1, StepUp: true},
	})
	if err != nil {
		fmt.Println("notify:", err)
		return
	}
	fmt.Println(<-got)

	cancel() // shut down: Run drains the queue and returns
	if err := <-done; err != nil {
		fmt.Println("run:", err)
		return
	}
	fmt.Println("delivered:", n.Stats().Delivered)
	// Output:
	// approval.requested act-1
	// https://oars.example.com/v1/approvals/act-1/decision
	// delivered: 1
}
