package vault_test

import (
	"context"
	"fmt"

	"github.com/oarsdev/oars/connector/vault"
)

func ExampleVault() {
	ctx := context.Background()
	// The keys come from the host's configuration, such as the
	// OARS_VAULT_KEYS environment variable; `oars vault keygen` prints one.
	k1, err := vault.GenerateKey("k1")
	if err != nil {
		fmt.Println("generate key:", err)
		return
	}
	keys, err := vault.ParseKeys(k1.String())
	if err != nil {
		fmt.Println("parse keys:", err)
		return
	}
	store := &vault.MemStore{} // or a storage/sqlite or storage/postgres Store
	v, err := vault.New(store, keys)
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	if err := v.Put(ctx, "stripe/api-key", []byte("sk_test_123")); err != nil {
		fmt.Println("put:", err)
		return
	}

	// A connector reads it through the Source interface.
	var src vault.Source = v
	token, err := src.Secret(ctx, "stripe/api-key")
	if err != nil {
		fmt.Println("secret:", err)
		return
	}
	fmt.Println("token length:", len(token))
	clear(token)

	// Rotation: k2 becomes active, k1 still opens until Rotate is done.
	k2, err := vault.GenerateKey("k2")
	if err != nil {
		fmt.Println("generate key:", err)
		return
	}
	keys, err = vault.ParseKeys(k2.String() + "," + k1.String())
	if err != nil {
		fmt.Println("parse keys:", err)
		return
	}
	v, err = vault.New(store, keys)
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	n, err := v.Rotate(ctx)
	if err != nil {
		fmt.Println("rotate:", err)
		return
	}
	infos, err := v.List(ctx)
	if err != nil {
		fmt.Println("list:", err)
		return
	}
	fmt.Println("re-encrypted:", n)
	for _, info := range infos {
		fmt.Println(info.Name, "sealed under", info.KeyID)
	}
	// Output:
	// token length: 11
	// re-encrypted: 1
	// stripe/api-key sealed under k2
}
