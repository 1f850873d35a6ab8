package httpconn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/connector/httpconn"
	"github.com/oarsdev/oars/connector/vault"
)

func Example() {
	// A fake issue tracker on this host. It wants the token and answers
	// with the created issue.
	tracker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var in struct{ Title string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id": 7, "title": %q, "url": "https://tracker.example%s/7"}`, in.Title, r.URL.Path)
	}))
	defer tracker.Close()

	cfg, err := httpconn.Parse([]byte(`
tools:
  - id: tracker
    base_url: https://tracker.example/api
    auth: {type: bearer, secret: tracker/token}
    operations:
      create_issue:
        method: POST
        path: /projects/{project}/issues
        body: {title: "{title}"}
        input_schema:
          type: object
          required: [project, title]
          properties: {project: {type: string}, title: {type: string}}
        success: [201]
        summary: {issue_id: /id, url: /url}
`), "tools.yaml")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	// Point the tool at the fake tracker, which is on loopback: egress
	// refuses loopback unless the tool is allowed to reach it.
	cfg.Tools[0].BaseURL = tracker.URL + "/api"
	cfg.Tools[0].AllowPrivate = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

	// The token lives in the vault; the agent never sees it.
	secrets := vault.Map{"tracker/token": []byte("tok-123")}
	reg := connector.NewRegistry()
	if err := httpconn.Register(reg, cfg, secrets); err != nil {
		fmt.Println("error:", err)
		return
	}

	res, err := reg.Execute(context.Background(), &connector.Request{
		ActionID:       "act-1",
		IdempotencyKey: "act-1",
		ToolID:         "tracker",
		Operation:      "create_issue",
		Input:          json.RawMessage(`{"project": "web", "title": "Login fails"}`),
		Attempt:        1,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(res.UpstreamStatus, string(res.Summary))

	// Input that does not match the schema never reaches the tracker.
	_, err = reg.Execute(context.Background(), &connector.Request{
		ToolID: "tracker", Operation: "create_issue", Input: json.RawMessage(`{"project": "web"}`),
	})
	fmt.Println(err != nil)
	// Output:
	// 201 {"issue_id":7,"url":"https://tracker.example/api/projects/web/issues/7"}
	// true
}
