// Package vaulttest is the conformance suite for implementations of
// [vault.Store]. A store's tests call [Run] with a function returning a
// fresh, empty store:
//
//	func TestVaultConformance(t *testing.T) {
//		vaulttest.Run(t, func(t *testing.T) vault.Store { return openEmptyStore(t) })
//	}
//
// A store that also implements [vault.Swapper] is checked for it too. It
// uses only the standard library and package vault.
package vaulttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oarsdev/oars/connector/vault"
)

// Run runs every conformance case as a subtest, each on a fresh store made
// by newStore, which should register the store's cleanup with t.Cleanup.
// Every failure is reported; Run does not stop at the first.
func Run(t *testing.T, newStore func(t *testing.T) vault.Store) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, s vault.Store)
	}{
		{"Empty", testEmpty},
		{"PutGet", testPutGet},
		{"Copies", testCopies},
		{"Replace", testReplace},
		{"ListSorted", testListSorted},
		{"UpdatedAt", testUpdatedAt},
		{"Delete", testDelete},
		{"Swap", testSwap},
		{"ConcurrentPut", testConcurrentPut},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newStore(t))
		})
	}
}

// sealed returns distinct opaque bytes standing for a sealed secret, with
// every byte value in it.
func sealed(tag byte) []byte {
	b := make([]byte, 0, 300)
	b = append(b, tag)
	for i := range 256 {
		b = append(b, byte(i))
	}
	return append(b, tag, 0, tag)
}

func put(t *testing.T, s vault.Store, name, keyID string, b []byte) {
	t.Helper()
	if err := s.PutSecret(context.Background(), name, keyID, b); err != nil {
		t.Fatalf("PutSecret(%q, %q) = %v, want nil", name, keyID, err)
	}
}

func checkGet(t *testing.T, s vault.Store, name, wantKeyID string, want []byte) {
	t.Helper()
	keyID, got, err := s.GetSecret(context.Background(), name)
	if err != nil {
		t.Errorf("GetSecret(%q) error = %v, want nil", name, err)
		return
	}
	if keyID != wantKeyID || !bytes.Equal(got, want) {
		t.Errorf("GetSecret(%q) = %q, %x, want %q, %x", name, keyID, got, wantKeyID, want)
	}
}

func checkNotFound(t *testing.T, s vault.Store, name string) {
	t.Helper()
	keyID, got, err := s.GetSecret(context.Background(), name)
	if !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("GetSecret(%q) = %q, %x, %v, want an error wrapping ErrNotFound", name, keyID, got, err)
	}
}

func list(t *testing.T, s vault.Store) []vault.SecretInfo {
	t.Helper()
	infos, err := s.ListSecrets(context.Background())
	if err != nil {
		t.Fatalf("ListSecrets() error = %v, want nil", err)
	}
	return infos
}

func names(infos []vault.SecretInfo) []string {
	out := make([]string, len(infos))
	for i, info := range infos {
		out[i] = info.Name
	}
	return out
}

func testEmpty(t *testing.T, s vault.Store) {
	ctx := context.Background()
	checkNotFound(t, s, "stripe/api-key")
	if err := s.DeleteSecret(ctx, "stripe/api-key"); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("DeleteSecret(unknown) = %v, want an error wrapping ErrNotFound", err)
	}
	if infos := list(t, s); len(infos) != 0 {
		t.Errorf("ListSecrets() on an empty store = %v, want none", infos)
	}
}

func testPutGet(t *testing.T, s vault.Store) {
	for i, n := range []struct{ name, keyID string }{
		{"stripe/api-key", "k1"},
		{"github.token", "key-2026.01"},
		{"a", "K_9"},
		{string(bytes.Repeat([]byte("n"), vault.MaxNameLength)), string(bytes.Repeat([]byte("k"), vault.MaxKeyIDLength))},
	} {
		b := sealed(byte(i))
		put(t, s, n.name, n.keyID, b)
		checkGet(t, s, n.name, n.keyID, b)
	}
	big := bytes.Repeat([]byte{0xAB, 0x00}, vault.MaxSecretSize)
	put(t, s, "big", "k1", big)
	checkGet(t, s, "big", "k1", big)
}

func testCopies(t *testing.T, s vault.Store) {
	b := sealed(1)
	want := bytes.Clone(b)
	put(t, s, "stripe/api-key", "k1", b)
	b[0] ^= 0xFF // the store must have kept its own copy
	checkGet(t, s, "stripe/api-key", "k1", want)

	_, got, err := s.GetSecret(context.Background(), "stripe/api-key")
	if err != nil {
		t.Fatalf("GetSecret = %v, want nil", err)
	}
	if len(got) > 0 {
		got[0] ^= 0xFF // the caller may modify the result
	}
	checkGet(t, s, "stripe/api-key", "k1", want)
}

func testReplace(t *testing.T, s vault.Store) {
	put(t, s, "stripe/api-key", "k1", sealed(1))
	put(t, s, "stripe/api-key", "k2", sealed(2))
	checkGet(t, s, "stripe/api-key", "k2", sealed(2))
	infos := list(t, s)
	if len(infos) != 1 || infos[0].Name != "stripe/api-key" || infos[0].KeyID != "k2" {
		t.Errorf("ListSecrets() after a replace = %v, want one secret stripe/api-key under k2", infos)
	}
}

func testListSorted(t *testing.T, s vault.Store) {
	// Byte order, which a database collation following a locale would
	// break ('-', '.', '/' and '_' sort apart from letters; upper case
	// before lower case).
	want := []string{"A", "Z", "_", "a", "a-b", "a.b", "a/b", "a0", "aB", "a_b", "ab", "b", "z/1"}
	order := slices.Clone(want)
	slices.Reverse(order)
	order[0], order[len(order)/2] = order[len(order)/2], order[0]
	for i, name := range order {
		put(t, s, name, fmt.Sprintf("k%d", i), sealed(byte(i)))
	}
	infos := list(t, s)
	if got := names(infos); !slices.Equal(got, want) {
		t.Errorf("ListSecrets() names = %q, want %q", got, want)
	}
	for _, info := range infos {
		i := slices.Index(order, info.Name)
		if want := fmt.Sprintf("k%d", i); info.KeyID != want {
			t.Errorf("ListSecrets(): %s has key id %q, want %q", info.Name, info.KeyID, want)
		}
	}
}

func testUpdatedAt(t *testing.T, s vault.Store) {
	before := time.Now().Truncate(time.Millisecond)
	put(t, s, "stripe/api-key", "k1", sealed(1))
	after := time.Now()
	infos := list(t, s)
	if len(infos) != 1 {
		t.Fatalf("ListSecrets() = %v, want one secret", infos)
	}
	first := infos[0].UpdatedAt
	if first.Before(before) || first.After(after) {
		t.Errorf("ListSecrets(): UpdatedAt = %v, want between %v and %v", first, before, after)
	}
	// Stores may keep milliseconds: let the clock pass first's before
	// the replace, so that a later UpdatedAt is possible.
	for !time.Now().Truncate(time.Millisecond).After(first) {
		runtime.Gosched()
	}
	put(t, s, "stripe/api-key", "k2", sealed(2))
	infos = list(t, s)
	if len(infos) != 1 || !infos[0].UpdatedAt.After(first) {
		t.Errorf("ListSecrets() after a replace = %v, want UpdatedAt after %v", infos, first)
	}
}

func testDelete(t *testing.T, s vault.Store) {
	ctx := context.Background()
	put(t, s, "a", "k1", sealed(1))
	put(t, s, "b", "k1", sealed(2))
	if err := s.DeleteSecret(ctx, "a"); err != nil {
		t.Fatalf("DeleteSecret(a) = %v, want nil", err)
	}
	checkNotFound(t, s, "a")
	checkGet(t, s, "b", "k1", sealed(2))
	if got := names(list(t, s)); !slices.Equal(got, []string{"b"}) {
		t.Errorf("ListSecrets() names after delete = %q, want [b]", got)
	}
	if err := s.DeleteSecret(ctx, "a"); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("DeleteSecret(a) again = %v, want an error wrapping ErrNotFound", err)
	}
	put(t, s, "a", "k2", sealed(3))
	checkGet(t, s, "a", "k2", sealed(3))
}

func testSwap(t *testing.T, s vault.Store) {
	sw, ok := s.(vault.Swapper)
	if !ok {
		t.Skip("the store is no vault.Swapper")
	}
	ctx := context.Background()
	swap := func(name string, old []byte, keyID string, b []byte, want bool) {
		t.Helper()
		got, err := sw.SwapSecret(ctx, name, old, keyID, b)
		if err != nil || got != want {
			t.Errorf("SwapSecret(%q, old %x…) = %v, %v, want %v, nil", name, old[:2], got, err, want)
		}
	}
	swap("none", sealed(1), "k2", sealed(2), false)
	checkNotFound(t, s, "none")

	put(t, s, "a", "k1", sealed(1))
	swap("a", sealed(9), "k2", sealed(2), false)
	checkGet(t, s, "a", "k1", sealed(1))
	swap("a", sealed(1), "k2", sealed(2), true)
	checkGet(t, s, "a", "k2", sealed(2))
	swap("a", sealed(1), "k3", sealed(3), false)
	checkGet(t, s, "a", "k2", sealed(2))

	// Of concurrent swaps from one value, one wins.
	const n = 8
	wins := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := sw.SwapSecret(ctx, "a", sealed(2), "k3", sealed(byte(10+i)))
			if err != nil {
				t.Errorf("concurrent SwapSecret #%d = %v", i, err)
			}
			wins[i] = ok
		}()
	}
	wg.Wait()
	won := -1
	for i, ok := range wins {
		if !ok {
			continue
		}
		if won >= 0 {
			t.Errorf("concurrent SwapSecret from one value: #%d and #%d both succeeded", won, i)
		}
		won = i
	}
	if won < 0 {
		t.Errorf("concurrent SwapSecret from one value: none succeeded")
		return
	}
	checkGet(t, s, "a", "k3", sealed(byte(10+won)))
}

func testConcurrentPut(t *testing.T, s vault.Store) {
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := s.PutSecret(context.Background(), fmt.Sprintf("s%d", i), "k1", sealed(byte(i))); err != nil {
				t.Errorf("concurrent PutSecret(s%d) = %v", i, err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := s.PutSecret(context.Background(), "shared", "k1", sealed(byte(i))); err != nil {
				t.Errorf("concurrent PutSecret(shared) #%d = %v", i, err)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		checkGet(t, s, fmt.Sprintf("s%d", i), "k1", sealed(byte(i)))
	}
	_, got, err := s.GetSecret(context.Background(), "shared")
	if err != nil {
		t.Fatalf("GetSecret(shared) = %v", err)
	}
	found := false
	for i := range n {
		found = found || bytes.Equal(got, sealed(byte(i)))
	}
	if !found {
		t.Errorf("GetSecret(shared) = %x, want one of the values put", got)
	}
	if got := len(list(t, s)); got != n+1 {
		t.Errorf("len(ListSecrets()) = %d, want %d", got, n+1)
	}
}
