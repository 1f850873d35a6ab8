package egress_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/oarsdev/oars/connector/egress"
)

func ExamplePolicy_Client() {
	// A tool listening on this host's loopback interface.
	tool := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from the tool")
	}))
	defer tool.Close()

	// By default loopback is refused, before any connection is made.
	resp, err := egress.Policy{}.Client(10 * time.Second).Get(tool.URL)
	var refused *egress.RefusedError
	switch {
	case errors.As(err, &refused):
		fmt.Println("refused:", refused.Range)
	case err != nil:
		fmt.Println("error:", err)
		return
	default:
		resp.Body.Close()
		fmt.Println("unexpectedly allowed")
		return
	}

	// Allowing the tool's address lets the request through.
	allow, err := egress.ParseAllow([]string{"127.0.0.1", "::1"})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	resp, err = egress.Policy{Allow: allow}.Client(10 * time.Second).Get(tool.URL)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(resp.Status, string(body))
	// Output:
	// refused: loopback
	// 200 OK hello from the tool
}
