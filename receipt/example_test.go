package receipt_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"log"
	"time"

	"github.com/oarsdev/oars/receipt"
)

// Sign a receipt, publish the public keys as a JWKS, and verify the
// receipt offline with nothing but the JWKS.
func ExampleSign() {
	ctx := context.Background()
	seed := sha256.Sum256([]byte("example key")) // use GenerateKey for real keys
	signer, err := receipt.NewEd25519Signer("example-key", ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		log.Fatal(err)
	}
	inputDigest, err := receipt.DigestJSON([]byte(`{"amount": 25, "currency": "EUR"}`))
	if err != nil {
		log.Fatal(err)
	}
	r := &receipt.Receipt{
		Spec:        receipt.Spec,
		ReceiptID:   "rcpt_1",
		ActionID:    "act_1",
		Seq:         1,
		Status:      receipt.StatusAllowed,
		Mode:        receipt.ModeEnforce,
		TenantID:    "acme",
		AgentID:     "support-bot",
		Principal:   receipt.Principal{UserID: "alice"},
		Resource:    receipt.Resource{ToolID: "payments", Operation: "refund", Target: "order/42"},
		InputDigest: inputDigest,
		IssuedAt:    time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC),
	}
	signed, err := receipt.Sign(ctx, signer, r)
	if err != nil {
		log.Fatal(err)
	}

	// The auditor's side: the JWKS and the receipt bytes are all it needs.
	keys, err := receipt.NewKeySet(signer)
	if err != nil {
		log.Fatal(err)
	}
	jwks, err := keys.MarshalJWKS()
	if err != nil {
		log.Fatal(err)
	}
	trusted, err := receipt.ParseJWKS(jwks)
	if err != nil {
		log.Fatal(err)
	}
	v, err := receipt.NewVerifier(trusted)
	if err != nil {
		log.Fatal(err)
	}
	got, err := v.Verify(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ok: receipt %s (action %s, seq %d, status %s) signed by %s\n",
		got.ReceiptID, got.ActionID, got.Seq, got.Status, got.Signature.Kid)

	// Any change breaks the signature.
	tampered := []byte(string(signed[:len(signed)-7]) + `"evil"}`)
	if _, err := v.Verify(tampered); err != nil {
		fmt.Println(err)
	}
	// Output:
	// ok: receipt rcpt_1 (action act_1, seq 1, status allowed) signed by example-key
	// receipt: verify: signature: signature does not verify
}

// Canonicalize action input and digest it; duplicate keys are rejected.
func ExampleDigestJSON() {
	d, err := receipt.DigestJSON([]byte(`{"b": 1, "a": [1.0, true]}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d)
	_, err = receipt.DigestJSON([]byte(`{"a": 1, "a": 2}`))
	fmt.Println(err)
	// Output:
	// sha256:a3c53012499a5a658f6efd83d827e19a87de94269b1c59a934f94ebffb498d74
	// receipt: canonicalize: json: duplicate key at /a (offset 9)
}
