package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oarsdev/oars/internal/netutil"
)

// MaxJWKSSize bounds the JWKS documents [JWTAuthenticator] fetches, in
// bytes; larger ones are refused.
const MaxJWKSSize = 1 << 20

// ErrJWKSUnavailable is wrapped by errors of [JWTAuthenticator] when it
// cannot decide whether a token is valid because it could not fetch or
// accept its issuer's JWKS (unreachable, an error status, too large,
// malformed, or holding symmetric or private keys). Servers must refuse
// the request, and may answer 503 rather than 401.
var ErrJWKSUnavailable = errors.New("identity: jwks unavailable")

// errUnknownKey is returned by keySource.keys when no key has the kid.
var errUnknownKey = errors.New("unknown key")

// keySource holds the keys of one issuer: its inline keys and a cache of
// its JWKS, refetched when a token names a key it does not hold or the
// cache is older than its TTL, never more often than minRefresh. It is
// safe for concurrent use; concurrent fetches coalesce into one.
type keySource struct {
	issuer     string
	url        string // "" if the issuer has only inline keys
	client     *http.Client
	timeout    time.Duration
	minRefresh time.Duration
	ttl        time.Duration
	now        func() time.Time
	log        *slog.Logger
	inline     []jose.JSONWebKey

	mu          sync.Mutex
	fetched     []jose.JSONWebKey
	fetchedAt   time.Time // of the last successful fetch; zero if none
	attemptedAt time.Time // of the last fetch attempt; zero if none
	lastErr     error     // of the last attempt
	call        *fetchCall
}

// fetchCall is a fetch in progress; done is closed when it ends.
type fetchCall struct {
	done chan struct{}
	err  error
}

// keys returns the keys with key id kid. It fetches the JWKS if the
// source has no such key, or its cache is stale, and minRefresh has passed
// since the last attempt; if another fetch is running it waits for it.
// It returns errUnknownKey if no key has kid, or an error wrapping
// ErrJWKSUnavailable if a needed fetch failed.
func (s *keySource) keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if found := findKeys(s.inline, kid); len(found) > 0 {
		return found, nil // inline keys never change
	}
	if s.url == "" {
		return nil, errUnknownKey
	}
	s.mu.Lock()
	found := findKeys(s.fetched, kid)
	now := s.now()
	stale := s.fetchedAt.IsZero() || now.Sub(s.fetchedAt) >= s.ttl
	if len(found) > 0 && (!stale || s.call != nil) {
		// A known key: use it. A stale cache is refreshed by whoever is
		// fetching already, or below.
		s.mu.Unlock()
		return found, nil
	}
	if c := s.call; c != nil {
		s.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for key set: %w", ErrJWKSUnavailable, ctx.Err())
		}
		s.mu.Lock()
		found = findKeys(s.fetched, kid)
		s.mu.Unlock()
		switch {
		case len(found) > 0:
			return found, nil
		case c.err != nil:
			return nil, c.err
		}
		return nil, errUnknownKey
	}
	if !s.attemptedAt.IsZero() && now.Sub(s.attemptedAt) < s.minRefresh {
		// Fetched too recently to fetch again.
		lastErr, neverFetched := s.lastErr, s.fetchedAt.IsZero()
		s.mu.Unlock()
		switch {
		case len(found) > 0:
			return found, nil
		case neverFetched && lastErr != nil:
			return nil, lastErr
		}
		return nil, errUnknownKey
	}
	c := &fetchCall{done: make(chan struct{})}
	s.call = c
	s.attemptedAt = now
	s.mu.Unlock()

	keys, err := s.fetch(ctx)

	s.mu.Lock()
	if err == nil {
		s.fetched, s.fetchedAt = keys, s.now()
	}
	s.lastErr, c.err = err, err
	s.call = nil
	close(c.done)
	found = findKeys(s.fetched, kid)
	s.mu.Unlock()

	if err != nil {
		s.log.WarnContext(ctx, "identity: jwks fetch failed", slog.String("issuer", s.issuer), slog.Any("error", err))
	} else {
		s.log.DebugContext(ctx, "identity: jwks fetched", slog.String("issuer", s.issuer), slog.Int("keys", len(keys)))
	}
	switch {
	case len(found) > 0:
		return found, nil // a stale key, if the refresh failed
	case err != nil:
		return nil, err
	}
	return nil, errUnknownKey
}

// findKeys returns the keys of set with key id kid.
func findKeys(set []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// fetch gets and parses the JWKS. Its errors wrap ErrJWKSUnavailable and
// name the issuer, not the URL.
func (s *keySource) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: issuer %q: %w", ErrJWKSUnavailable, truncate(s.issuer), fmt.Errorf(format, args...))
	}
	// The fetch is not cancelled with the request that needed it, only
	// bounded by the timeout: a client that goes away must not leave the
	// issuer without keys until minRefresh has passed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fail("request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: issuer %q: get: %w", ErrJWKSUnavailable, truncate(s.issuer), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fail("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: issuer %q: read: %w", ErrJWKSUnavailable, truncate(s.issuer), err)
	}
	if len(body) > MaxJWKSSize {
		return nil, fail("larger than %d bytes", MaxJWKSSize)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("%w: issuer %q: %w", ErrJWKSUnavailable, truncate(s.issuer), err)
	}
	return keys, nil
}

// parseJWKS parses a JWKS document and returns its signature keys. Keys
// of a type go-jose does not support are skipped (RFC 7517 §5), as are
// keys marked for encryption; a symmetric ("oct") or private key makes the
// whole set invalid, since an issuer that publishes one is misconfigured.
func parseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("malformed jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`malformed jwks: no "keys" array`)
	}
	var out []jose.JSONWebKey
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			if errors.Is(err, jose.ErrUnsupportedKeyType) {
				continue
			}
			return nil, fmt.Errorf("key %d: malformed: %w", i, err)
		}
		if err := checkVerifyKey(k); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if k.Use == "enc" {
			continue
		}
		out = append(out, k)
	}
	return out, nil
}

// checkVerifyKey accepts only public asymmetric keys that have a key id.
func checkVerifyKey(k jose.JSONWebKey) error {
	if _, sym := k.Key.([]byte); sym {
		return errors.New(`symmetric ("oct") keys are not accepted`)
	}
	if !k.IsPublic() {
		return errors.New("not a public key (private keys must not be published)")
	}
	if !k.Valid() {
		return errors.New("invalid key")
	}
	if k.KeyID == "" {
		return errors.New(`no key id ("kid")`)
	}
	return nil
}

// checkKeyURL accepts https URLs, and http URLs to a loopback host (tests,
// sidecars), without credentials.
func checkKeyURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if netutil.IsLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return errors.New("must be https (http only to a loopback host)")
}

// keyClient returns a copy of c (or a new client) that follows at most 5
// redirects, each to a URL checkKeyURL accepts, so that an https JWKS URL
// cannot be downgraded.
func keyClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	out.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if err := checkKeyURL(req.URL.String()); err != nil {
			return fmt.Errorf("redirect target %w", err)
		}
		return nil
	}
	return &out
}
