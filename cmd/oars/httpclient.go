package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/oarsdev/oars/internal/netutil"
)

// HTTP client defaults of the commands that talk to a server.
const (
	// httpTimeout bounds one request, from dial to the last body byte.
	httpTimeout = 10 * time.Second
	// httpMaxJWKS bounds a JWKS fetched over HTTP.
	httpMaxJWKS = 1 << 20
	// httpMaxBody bounds any other response body (a page of receipts).
	httpMaxBody = 64 << 20
	// httpMaxRedirects bounds the redirects a request follows.
	httpMaxRedirects = 5
	// tokenEnv is the environment variable holding the API token when
	// --token is not given.
	tokenEnv = "OARS_TOKEN"
)

// errInsecureURL reports an http:// URL for a host that is not loopback.
var errInsecureURL = errors.New("plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https")

// isURL reports whether s looks like a URL rather than a file path.
func isURL(s string) bool { return strings.Contains(s, "://") }

// parseServerURL parses raw, an http(s) URL, and checks it may carry
// credentials or trusted keys: https, or http to a loopback host only. The
// URL must have a host and no user information, query or fragment. what
// names the flag in errors ("--server", "--jwks"); raw itself is not
// repeated when it might hold user information.
func parseServerURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid URL", what)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: the URL must not contain user information; give the token with --token or %s", what, tokenEnv)
	}
	if err := checkURL(u); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, u.Redacted(), err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s %s: the URL must not have a query or fragment", what, u.Redacted())
	}
	return u, nil
}

// checkURL checks that u is https, or http to a loopback host, with a
// host. It is applied to every URL the client requests, redirects
// included.
func checkURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !netutil.IsLoopbackHost(u.Hostname()) {
			return errInsecureURL
		}
	default:
		return fmt.Errorf("unsupported URL scheme %q; want https (or http for a loopback host)", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("the URL has no host")
	}
	return nil
}

// newHTTPClient returns a client for the commands: keep-alive, at most
// conns idle connections per host, each request bounded by timeout (0: no
// bound), and redirects followed only to URLs checkURL accepts, at most
// httpMaxRedirects of them. (net/http already drops the Authorization
// header on a redirect to another host.)
func newHTTPClient(conns int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = max(100, 2*conns)
	tr.MaxIdleConnsPerHost = max(conns, http.DefaultMaxIdleConnsPerHost)
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: checkRedirect}
}

// checkRedirect is the CheckRedirect of the commands' clients.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= httpMaxRedirects {
		return fmt.Errorf("stopped after %d redirects", httpMaxRedirects)
	}
	if err := checkURL(req.URL); err != nil {
		return fmt.Errorf("redirect to %s refused: %w", req.URL.Redacted(), err)
	}
	return nil
}

// apiClient calls the oarsd API at base with a bearer token. It is safe for
// concurrent use.
type apiClient struct {
	http  *http.Client
	base  *url.URL
	token string
}

// endpoint returns the URL of escapedPath (which starts with "/" and has
// its segments escaped with url.PathEscape) under the base URL, with query
// q (nil for none).
func (c *apiClient) endpoint(escapedPath string, q url.Values) string {
	s := strings.TrimSuffix(c.base.String(), "/") + escapedPath
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// httpStatusError is an answer other than the one expected: the status and
// what the server said, from its JSON error envelope when it sent one.
type httpStatusError struct {
	Status  int
	Code    string // the envelope's error.code, or ""
	Message string // the envelope's error.message, or ""
}

func (e *httpStatusError) Error() string {
	s := "HTTP " + strconv.Itoa(e.Status)
	if t := http.StatusText(e.Status); t != "" {
		s += " " + t
	}
	switch {
	case e.Code != "" && e.Message != "":
		s += ": " + printable(e.Code) + ": " + printable(e.Message)
	case e.Message != "":
		s += ": " + printable(e.Message)
	}
	return s
}

// newStatusError reads the server's error envelope
// {"error":{"code","message"}} from body, if it is one.
func newStatusError(status int, body []byte) *httpStatusError {
	e := &httpStatusError{Status: status}
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	}
	return e
}

// printable shortens s to 200 bytes and quotes it if it holds anything but
// printable characters, so a server cannot play tricks on a terminal.
func printable(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return verifyPrintable(s)
}

// get fetches url with Accept: application/json (and the bearer token if
// token is not empty) and returns the body of a 200 answer, at most max
// bytes. Another status is an *httpStatusError.
func get(ctx context.Context, c *http.Client, rawURL, token string, max int64) ([]byte, error) {
	return send(ctx, c, http.MethodGet, rawURL, token, nil, max)
}

// send is get for any method: a non-nil body is sent as
// application/json.
func send(ctx context.Context, c *http.Client, method, rawURL, token string, body []byte, max int64) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := readBody(resp.Body, max)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newStatusError(resp.StatusCode, answer)
	}
	return answer, nil
}

// readBody reads r to the end, failing if it holds more than max bytes.
func readBody(r io.Reader, max int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("response larger than %d bytes", max)
	}
	return body, nil
}

// fetchJWKS fetches a JWKS from rawURL, which must pass parseServerURL,
// within httpTimeout and httpMaxJWKS.
func fetchJWKS(ctx context.Context, c *http.Client, rawURL string) ([]byte, error) {
	u, err := parseServerURL("--jwks", rawURL)
	if err != nil {
		return nil, err
	}
	body, err := get(ctx, c, u.String(), "", httpMaxJWKS)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	return body, nil
}

// resolveToken returns the token of the --token flag, or else of the
// OARS_TOKEN environment variable.
func resolveToken(flagValue string) (string, error) {
	t := flagValue
	if t == "" {
		t = os.Getenv(tokenEnv)
	}
	switch {
	case t == "":
		return "", fmt.Errorf("an API token is required: --token T or the %s environment variable", tokenEnv)
	case strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "", errors.New("the API token contains white space or control characters")
	}
	return t, nil
}
