package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/ledger"
)

// checkpoint returns a signed checkpoint of the ledger's current size.
func (s *server) checkpoint(w http.ResponseWriter, r *http.Request, _ *identity.Principal) error {
	cp, err := s.ledger.Checkpoint(r.Context())
	if err != nil {
		return unavailable("no checkpoint is available", err)
	}
	writeRaw(w, "text/plain; charset=utf-8", cp)
	return nil
}

// verifierKey returns the note verifier key of checkpoints, one line.
func (s *server) verifierKey(w http.ResponseWriter, _ *http.Request, _ *identity.Principal) error {
	if s.cfg.VerifierKey == "" {
		return notFound("no checkpoint verifier key is configured")
	}
	writeRaw(w, "text/plain; charset=utf-8", []byte(s.cfg.VerifierKey+"\n"))
	return nil
}

// entry returns the leaf at an index, byte for byte, if the caller may see
// its tenant.
func (s *server) entry(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	index, ok := parseIndex(r.PathValue("index"))
	if !ok {
		return badRequest("the entry index must be a non-negative integer")
	}
	leaf, err := s.ledger.Leaf(r.Context(), index)
	switch {
	case errors.Is(err, ledger.ErrOutOfRange):
		return notFound("entry not found")
	case err != nil:
		return unavailable("the ledger is unavailable", err)
	}
	if h, ok := ledger.ParseHeader(leaf); !visible(p, h, ok) {
		return notFound("entry not found")
	}
	writeRaw(w, "application/json", leaf)
	return nil
}

// inclusionResponse is the answer of GET /v1/ledger/proofs/inclusion.
type inclusionResponse struct {
	Index    int64    `json:"index"`
	TreeSize int64    `json:"tree_size"`
	Hashes   []string `json:"hashes"`
}

// inclusionProof proves that the leaf at index is in the tree of size
// tree_size (default: the current size).
func (s *server) inclusionProof(w http.ResponseWriter, r *http.Request, _ *identity.Principal) error {
	q, err := parseQuery(r, "index", "tree_size")
	if err != nil {
		return err
	}
	index, present, err := q.int("index")
	if err != nil {
		return err
	}
	if !present {
		return badRequest(`query parameter "index" is required`)
	}
	size, err := s.ledger.Size(r.Context())
	if err != nil {
		return unavailable("the ledger is unavailable", err)
	}
	treeSize, present, err := q.int("tree_size")
	if err != nil {
		return err
	}
	if !present {
		treeSize = size
	}
	if index >= size {
		return notFound("entry not found")
	}
	proof, err := s.ledger.ProveInclusion(r.Context(), index, treeSize)
	switch {
	case errors.Is(err, ledger.ErrInvalidRange):
		return badRequest("invalid range: want 0 <= index < tree_size <= the ledger's size")
	case err != nil:
		return unavailable("the ledger is unavailable", err)
	}
	writeJSON(w, http.StatusOK, inclusionResponse{Index: index, TreeSize: treeSize, Hashes: encodeHashes(proof)})
	return nil
}

// consistencyResponse is the answer of GET /v1/ledger/proofs/consistency.
type consistencyResponse struct {
	From   int64    `json:"from"`
	To     int64    `json:"to"`
	Hashes []string `json:"hashes"`
}

// consistencyProof proves that the tree of size to (default: the current
// size) extends the tree of size from.
func (s *server) consistencyProof(w http.ResponseWriter, r *http.Request, _ *identity.Principal) error {
	q, err := parseQuery(r, "from", "to")
	if err != nil {
		return err
	}
	from, present, err := q.int("from")
	if err != nil {
		return err
	}
	if !present {
		return badRequest(`query parameter "from" is required`)
	}
	to, present, err := q.int("to")
	if err != nil {
		return err
	}
	if !present {
		if to, err = s.ledger.Size(r.Context()); err != nil {
			return unavailable("the ledger is unavailable", err)
		}
	}
	proof, err := s.ledger.ProveConsistency(r.Context(), from, to)
	switch {
	case errors.Is(err, ledger.ErrInvalidRange):
		return badRequest("invalid range: want 1 <= from <= to <= the ledger's size")
	case err != nil:
		return unavailable("the ledger is unavailable", err)
	}
	writeJSON(w, http.StatusOK, consistencyResponse{From: from, To: to, Hashes: encodeHashes(proof)})
	return nil
}

// encodeHashes returns the standard base64 of each hash, never nil.
func encodeHashes(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}
