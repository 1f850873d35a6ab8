package identity_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/oarsdev/oars/identity"
)

// Configure API tokens by the hash of their secret and authenticate a
// request that presents the secret.
func ExampleTokenSet() {
	secret, err := identity.NewToken() // give this to the token's user, once
	if err != nil {
		fmt.Println(err)
		return
	}
	set, err := identity.NewTokenSet([]identity.Token{{
		Name:    "ci-bot",
		Hash:    identity.HashToken(secret), // only the hash is configured
		Roles:   []identity.Role{identity.RoleAgent},
		Tenants: []string{"acme"},
		AgentID: "release-bot",
	}})
	if err != nil {
		fmt.Println(err)
		return
	}

	r := httptest.NewRequest("POST", "/v1/actions", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	p, err := set.Authenticate(context.Background(), r)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Subject, p.HasRole(identity.RoleAgent), p.InTenant("acme"), p.InTenant("globex"))

	r.Header.Set("Authorization", "Bearer oars_wrong")
	_, err = set.Authenticate(context.Background(), r)
	fmt.Println(errors.Is(err, identity.ErrInvalidCredentials))
	// Output:
	// ci-bot true true false
	// true
}
