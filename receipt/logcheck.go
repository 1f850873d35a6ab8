package receipt

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// LogChecker checks the entries of a ledger one by one, in index order:
// it implements the ledger's entry checker (CheckEntry). Each leaf must be
// exactly the canonical bytes of a signed v1 receipt or event that the
// verifier accepts, and the receipts of each action must chain: the first
// has seq 1, each next one seq+1, the same tenant, and the digest of the
// previous leaf of the action as prev_receipt_digest.
//
// A LogChecker keeps state per action (its tenant, last seq and last
// digest, about 150 bytes), so it checks one log once, from index 0. It is
// not safe for concurrent use.
type LogChecker struct {
	v       *Verifier
	actions map[string]actionState
}

// actionState is what the next receipt of an action must chain to.
type actionState struct {
	tenant string
	seq    int64
	digest string
}

// NewLogChecker returns a LogChecker verifying signatures with v.
func NewLogChecker(v *Verifier) *LogChecker {
	return &LogChecker{v: v, actions: make(map[string]actionState)}
}

// CheckEntry checks the leaf at index (see [LogChecker]). It returns nil
// if the leaf is acceptable, and otherwise a [*VerifyError] whose message
// names the index, as in "receipt: entry 17: chain: …". A non-canonical
// leaf fails with [CheckCanonical]; a leaf that is neither a receipt nor
// an event fails with [CheckFormat]. leaf is neither modified nor
// retained.
func (c *LogChecker) CheckEntry(index int64, leaf []byte) error {
	if verr := c.check(leaf); verr != nil {
		verr.op = "entry " + strconv.FormatInt(index, 10)
		return verr
	}
	return nil
}

func (c *LogChecker) check(leaf []byte) *VerifyError {
	if c == nil || c.v == nil {
		return verifyErr(CheckFormat, errors.New("nil verifier"))
	}
	canon, verr := canonicalize(leaf)
	if verr != nil {
		return verr
	}
	if !bytes.Equal(canon, leaf) {
		return verifyErr(CheckCanonical, errors.New("leaf is not in canonical form"))
	}
	spec, err := peekSpec(canon)
	if err != nil {
		return verifyErr(CheckFormat, err)
	}
	switch spec {
	case EventSpec:
		_, verr := c.v.verifyCanonicalEvent(canon)
		return verr
	case Spec:
	default:
		return verifyErr(CheckFormat, invalid("spec is neither %s nor %s", Spec, EventSpec))
	}
	r, verr := c.v.verifyCanonicalReceipt(canon)
	if verr != nil {
		return verr
	}
	st, seen := c.actions[r.ActionID]
	switch {
	case !seen && r.Seq != 1:
		return verifyErr(CheckSeq, fmt.Errorf("%w: first receipt of the action has seq %d, want 1", ErrBadSeq, r.Seq))
	case seen && r.Seq != st.seq+1:
		return verifyErr(CheckSeq, fmt.Errorf("%w: seq %d follows seq %d", ErrBadSeq, r.Seq, st.seq))
	case seen && r.TenantID != st.tenant:
		return verifyErr(CheckChain, fmt.Errorf("%w: tenant_id differs from the previous receipt's", ErrBrokenChain))
	case seen && r.PrevReceiptDigest != st.digest:
		return verifyErr(CheckChain, fmt.Errorf("%w: prev_receipt_digest is not the digest of the previous receipt", ErrBrokenChain))
	}
	c.actions[r.ActionID] = actionState{tenant: r.TenantID, seq: r.Seq, digest: Digest(leaf)}
	return nil
}

// peekSpec returns the string value of the top-level spec member of a
// canonical document.
func peekSpec(canonical []byte) (string, error) {
	x := newDecoder(canonical)
	var spec string
	found := false
	err := x.object("", func(name string) (err error) {
		if name == "spec" {
			found = true
			spec, err = x.str(name)
			return err
		}
		return x.skip(name)
	})
	if err != nil {
		return "", err
	}
	if !found {
		return "", invalid("missing spec")
	}
	return spec, nil
}
