package webhook_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/approval/webhook"
	"github.com/oarsdev/oars/internal/testutil"
	"github.com/oarsdev/oars/receipt"
)

var testSecret = []byte("whsec-0123456789abcdef-never-log-me")

const apiBase = "https://oars.example.com"

// received is one request the test receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server that hands every request to the test
// on reqs and answers with status(n) for the n-th request (1-based).
type receiver struct {
	srv   *httptest.Server
	reqs  chan received
	count atomic.Int64
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{reqs: make(chan received, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		n := int(r.count.Add(1))
		r.reqs <- received{header: req.Header.Clone(), body: body}
		w.WriteHeader(status(n))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next request.
func (r *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case got := <-r.reqs:
		return got
	case <-t.Context().Done():
		t.Fatal("test ended before the receiver got a request")
		return received{}
	}
}

// noMore checks that no further request arrived.
func (r *receiver) noMore(t *testing.T) {
	t.Helper()
	select {
	case got := <-r.reqs:
		t.Errorf("receiver got an extra request: %s", got.body)
	default:
	}
}

func always(status int) func(int) int { return func(int) int { return status } }

func noBackoff(int) time.Duration { return 0 }

// newNotifier returns a Notifier with zero backoff and a captured debug
// log, posting to endpoint.
func newNotifier(t *testing.T, endpoint string, opts ...webhook.Option) (*webhook.Notifier, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	all := append([]webhook.Option{
		webhook.WithBackoff(noBackoff),
		webhook.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}, opts...)
	n, err := webhook.New(endpoint, testSecret, apiBase, all...)
	require.NoError(t, err, "New")
	return n, logs
}

// start runs n until the returned stop is called; stop returns Run's
// result.
func start(t *testing.T, n *webhook.Notifier) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func testRequest() approval.Request {
	return approval.Request{
		ActionID:        "act-123",
		TenantID:        "tenant-a",
		AgentID:         "agent-7",
		RequesterUserID: "alice",
		Resource:        receipt.Resource{ToolID: "payments", Operation: "refund", Target: "order/42"},
		Requirement: approval.Requirement{
			Roles:     []string{"finance"},
			Users:     []string{"bob"},
			Quorum:    2,
			ExpiresAt: time.Date(2026, 5, 1, 9, 15, 0, 0, time.FixedZone("CEST", 2*3600)),
			StepUp:    true,
		},
		Reasons: []string{"refund above 1000 EUR"},
	}
}

func TestDelivery(t *testing.T) {
	rcv := newReceiver(t, always(http.StatusNoContent))
	n, _ := newNotifier(t, rcv.srv.URL+"/hooks/oars")
	stop := start(t, n)
	require.NoError(t, n.Notify(context.Background(), testRequest()), "Notify")
	got := rcv.next(t)

	assert.Equal(t, "application/json", got.header.Get("Content-Type"), "Content-Type")
	assert.Equal(t, "approval.requested", got.header.Get(webhook.EventHeader), "Oars-Event")
	_, err := uuid.Parse(got.header.Get(webhook.DeliveryHeader))
	assert.NoError(t, err, "Oars-Delivery is a UUID")

	sig := got.header.Get(webhook.SignatureHeader)
	assert.NoError(t, webhook.VerifySignature(testSecret, sig, got.body, time.Now(), 5*time.Minute),
		"VerifySignature(received request)")
	tampered := bytes.Replace(got.body, []byte(`"quorum":2`), []byte(`"quorum":1`), 1)
	require.NotEqual(t, got.body, tampered, "tampering changed the body")
	assert.ErrorIs(t, webhook.VerifySignature(testSecret, sig, tampered, time.Now(), 5*time.Minute),
		webhook.ErrInvalidSignature, "VerifySignature(tampered body)")
	assert.ErrorIs(t, webhook.VerifySignature([]byte("another-secret-of-16+"), sig, got.body, time.Now(), 5*time.Minute),
		webhook.ErrInvalidSignature, "VerifySignature(other secret)")

	want := `{"type":"approval.requested","action_id":"act-123","tenant_id":"tenant-a","agent_id":"agent-7",` +
		`"requester":"alice","resource":{"operation":"refund","target":"order/42","tool_id":"payments"},` +
		`"requirement":{"roles":["finance"],"users":["bob"],"quorum":2,"expires_at":"2026-05-01T07:15:00Z","step_up":true},` +
		`"reasons":["refund above 1000 EUR"],` +
		`"links":{"approval":"https://oars.example.com/v1/approvals/act-123",` +
		`"decision":"https://oars.example.com/v1/approvals/act-123/decision"}}`
	assert.JSONEq(t, want, string(got.body), "notification body")
	var p webhook.Payload
	require.NoError(t, json.Unmarshal(got.body, &p), "decode body as Payload")
	assert.Equal(t, "act-123", p.ActionID, "Payload.ActionID")

	require.NoError(t, stop(), "Run after stop")
	assert.Equal(t, webhook.Stats{Delivered: 1}, n.Stats(), "Stats")
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		status       func(n int) int
		maxAttempts  int
		wantAttempts int
		want         webhook.Stats
		wantLog      string
	}{
		{
			name:         "500 then success",
			status:       func(n int) int { return map[bool]int{true: 500, false: 200}[n < 3] },
			maxAttempts:  5,
			wantAttempts: 3,
			want:         webhook.Stats{Delivered: 1},
			wantLog:      "webhook.delivered",
		},
		{
			name:         "429 then success",
			status:       func(n int) int { return map[bool]int{true: 429, false: 202}[n < 2] },
			maxAttempts:  5,
			wantAttempts: 2,
			want:         webhook.Stats{Delivered: 1},
			wantLog:      "webhook.delivered",
		},
		{
			name:         "400 is not retried",
			status:       always(400),
			maxAttempts:  5,
			wantAttempts: 1,
			want:         webhook.Stats{Failed: 1},
			wantLog:      "rejected by the receiver",
		},
		{
			name:         "404 is not retried",
			status:       always(404),
			maxAttempts:  5,
			wantAttempts: 1,
			want:         webhook.Stats{Failed: 1},
			wantLog:      "rejected by the receiver",
		},
		{
			name:         "redirect is not followed",
			status:       always(307),
			maxAttempts:  5,
			wantAttempts: 1,
			want:         webhook.Stats{Failed: 1},
			wantLog:      "rejected by the receiver",
		},
		{
			name:         "gives up after max attempts",
			status:       always(503),
			maxAttempts:  3,
			wantAttempts: 3,
			want:         webhook.Stats{Failed: 1},
			wantLog:      "giving up",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.status)
			n, logs := newNotifier(t, rcv.srv.URL, webhook.WithMaxAttempts(tt.maxAttempts))
			stop := start(t, n)
			require.NoError(t, n.Notify(context.Background(), testRequest()), "Notify")
			var deliveries []string
			for range tt.wantAttempts {
				got := rcv.next(t)
				deliveries = append(deliveries, got.header.Get(webhook.DeliveryHeader))
				assert.NoError(t, webhook.VerifySignature(testSecret, got.header.Get(webhook.SignatureHeader), got.body, time.Now(), time.Minute),
					"VerifySignature(attempt %d)", len(deliveries))
			}
			// Stopping drains: a retry still due would be made before Run
			// returns, so an extra attempt would show below.
			require.NoError(t, stop(), "Run")
			rcv.noMore(t)
			assert.Equal(t, tt.want, n.Stats(), "Stats")
			for _, d := range deliveries {
				assert.Equal(t, deliveries[0], d, "Oars-Delivery is the same on every attempt")
			}
			assert.Contains(t, logs.String(), tt.wantLog, "log")
			assert.NotContains(t, logs.String(), string(testSecret), "log holds the secret")
		})
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	endpoint := dead.URL + "/hook?token=url-token-do-not-log"
	dead.Close() // connections are now refused

	var retries []int
	var mu sync.Mutex
	n, logs := newNotifier(t, endpoint, webhook.WithMaxAttempts(3), webhook.WithBackoff(func(retry int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		retries = append(retries, retry)
		return 0
	}))
	require.NoError(t, n.Notify(context.Background(), testRequest()), "Notify")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run drains the queue and returns
	require.NoError(t, n.Run(ctx), "Run")

	assert.Equal(t, webhook.Stats{Failed: 1}, n.Stats(), "Stats")
	mu.Lock()
	assert.Equal(t, []int{1, 2}, retries, "backoff calls (retry numbers)")
	mu.Unlock()
	out := logs.String()
	assert.Contains(t, out, "giving up", "log")
	assert.NotContains(t, out, "url-token-do-not-log", "log holds the endpoint URL")
	assert.NotContains(t, out, string(testSecret), "log holds the secret")
}

func TestSecretNeverLogged(t *testing.T) {
	rcv := newReceiver(t, func(n int) int { return []int{500, 200, 400}[min(n, 3)-1] })
	n, logs := newNotifier(t, rcv.srv.URL, webhook.WithQueueSize(1), webhook.WithWorkers(1))
	stop := start(t, n)
	ctx := context.Background()
	require.NoError(t, n.Notify(ctx, testRequest()), "Notify #1")
	rcv.next(t)
	rcv.next(t)
	require.NoError(t, n.Notify(ctx, testRequest()), "Notify #2")
	rcv.next(t)
	require.NoError(t, stop(), "Run")
	out := logs.String()
	for _, s := range []string{string(testSecret), hex.EncodeToString(testSecret), "refund above 1000 EUR"} {
		assert.NotContains(t, out, s, "log output")
	}
	assert.Contains(t, out, `"action_id":"act-123"`, "log names the action")
}

func TestQueueFull(t *testing.T) {
	rcv := newReceiver(t, always(200))
	reg := prometheus.NewRegistry()
	n, logs := newNotifier(t, rcv.srv.URL, webhook.WithQueueSize(2), webhook.WithMetrics(reg))
	ctx := context.Background()
	// Not running yet: the queue fills.
	require.NoError(t, n.Notify(ctx, testRequest()), "Notify #1")
	require.NoError(t, n.Notify(ctx, testRequest()), "Notify #2")
	err := n.Notify(ctx, testRequest())
	assert.ErrorIs(t, err, webhook.ErrQueueFull, "Notify on a full queue")
	assert.Equal(t, webhook.Stats{Dropped: 1}, n.Stats(), "Stats after the drop")
	assert.Contains(t, logs.String(), "webhook.dropped", "log after the drop")

	stop := start(t, n)
	rcv.next(t)
	rcv.next(t)
	require.NoError(t, stop(), "Run")
	rcv.noMore(t)
	assert.Equal(t, webhook.Stats{Delivered: 2, Dropped: 1}, n.Stats(), "Stats after draining")

	got := map[string]float64{}
	mfs, err := reg.Gather()
	require.NoError(t, err, "Gather")
	for _, mf := range mfs {
		if mf.GetName() != "oars_webhook_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{"delivered": 2, "failed": 0, "dropped": 1}, got, "oars_webhook_notifications_total")
}

func TestStoppedAndRunOnce(t *testing.T) {
	rcv := newReceiver(t, always(200))
	n, _ := newNotifier(t, rcv.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, n.Run(ctx), "Run")
	assert.ErrorIs(t, n.Notify(context.Background(), testRequest()), webhook.ErrStopped, "Notify after Run ended")
	assert.Error(t, n.Run(context.Background()), "second Run")
}

func TestDrainDelivers(t *testing.T) {
	rcv := newReceiver(t, always(200))
	n, _ := newNotifier(t, rcv.srv.URL, webhook.WithWorkers(3))
	for i := range 5 {
		require.NoError(t, n.Notify(context.Background(), testRequest()), "Notify #%d", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, n.Run(ctx), "Run with an ended context drains the queue")
	assert.Equal(t, webhook.Stats{Delivered: 5}, n.Stats(), "Stats")
	assert.Equal(t, int64(5), rcv.count.Load(), "requests received")
}

func TestDrainDeadline(t *testing.T) {
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		arrived <- struct{}{}
		select { // hang until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	n, logs := newNotifier(t, srv.URL, webhook.WithWorkers(1), webhook.WithDrainTimeout(0))
	require.NoError(t, n.Notify(context.Background(), testRequest()), "Notify #1")
	require.NoError(t, n.Notify(context.Background(), testRequest()), "Notify #2")
	stop := start(t, n)
	<-arrived
	err := stop()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Run past the drain deadline")
	assert.Equal(t, webhook.Stats{Failed: 1, Dropped: 1}, n.Stats(), "Stats: one in flight, one queued")
	assert.Contains(t, logs.String(), "abandoned at shutdown", "log")
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		secret   []byte
		base     string
		opts     []webhook.Option
	}{
		{"relative endpoint", "/hook", testSecret, apiBase, nil},
		{"ftp endpoint", "ftp://example.com/hook", testSecret, apiBase, nil},
		{"bad endpoint", "http://[::1", testSecret, apiBase, nil},
		{"empty api base", "https://example.com/hook", testSecret, "", nil},
		{"api base with query", "https://example.com/hook", testSecret, apiBase + "?x=1", nil},
		{"short secret", "https://example.com/hook", []byte("short"), apiBase, nil},
		{"nil option", "https://example.com/hook", testSecret, apiBase, []webhook.Option{nil}},
		{"nil client", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithHTTPClient(nil)}},
		{"nil logger", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithLogger(nil)}},
		{"zero timeout", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithAttemptTimeout(0)}},
		{"zero attempts", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithMaxAttempts(0)}},
		{"nil backoff", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithBackoff(nil)}},
		{"zero queue", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithQueueSize(0)}},
		{"zero workers", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithWorkers(0)}},
		{"negative drain", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithDrainTimeout(-1)}},
		{"nil clock", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithClock(nil)}},
		{"nil registry", "https://example.com/hook", testSecret, apiBase, []webhook.Option{webhook.WithMetrics(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := webhook.New(tt.endpoint, tt.secret, tt.base, tt.opts...)
			assert.Error(t, err, "New(%s)", tt.name)
			assert.Nil(t, n, "New(%s)", tt.name)
		})
	}
	t.Run("endpoint not quoted", func(t *testing.T) {
		_, err := webhook.New("ftp://example.com/hook?token=tok-secret", testSecret, apiBase)
		require.Error(t, err, "New(ftp endpoint)")
		assert.NotContains(t, err.Error(), "tok-secret", "New error")
	})
	t.Run("metrics registered twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		_, err := webhook.New("https://example.com/hook", testSecret, apiBase, webhook.WithMetrics(reg))
		require.NoError(t, err, "New with metrics")
		_, err = webhook.New("https://example.com/hook", testSecret, apiBase, webhook.WithMetrics(reg))
		assert.Error(t, err, "New with metrics on the same registry again")
	})
}

func TestNotifyInvalidRequest(t *testing.T) {
	n, _ := newNotifier(t, "https://example.com/hook")
	r := testRequest()
	r.ActionID = ""
	assert.Error(t, n.Notify(context.Background(), r), "Notify(no action id)")
	assert.Equal(t, webhook.Stats{}, n.Stats(), "Stats")
}

func TestNewPayload(t *testing.T) {
	p, err := webhook.NewPayload(approval.Request{ActionID: "a/b c?d"}, "http://oars.local:8080")
	require.NoError(t, err, "NewPayload")
	b, err := json.Marshal(p)
	require.NoError(t, err, "Marshal")
	want := `{"type":"approval.requested","action_id":"a/b c?d","tenant_id":"","agent_id":"","requester":"",` +
		`"resource":{"operation":"","tool_id":""},"requirement":{"roles":[],"users":[],"quorum":0,"step_up":false},` +
		`"reasons":[],"links":{"approval":"http://oars.local:8080/v1/approvals/a%2Fb%20c%3Fd",` +
		`"decision":"http://oars.local:8080/v1/approvals/a%2Fb%20c%3Fd/decision"}}`
	assert.JSONEq(t, want, string(b), "NewPayload(minimal request)")
}

func TestAPIBaseTrailingSlash(t *testing.T) {
	rcv := newReceiver(t, always(200))
	n, err := webhook.New(rcv.srv.URL, testSecret, apiBase+"/", webhook.WithBackoff(noBackoff))
	require.NoError(t, err, "New")
	stop := start(t, n)
	require.NoError(t, n.Notify(context.Background(), testRequest()), "Notify")
	got := rcv.next(t)
	require.NoError(t, stop(), "Run")
	var p webhook.Payload
	require.NoError(t, json.Unmarshal(got.body, &p), "decode")
	assert.Equal(t, apiBase+"/v1/approvals/act-123", p.Links.Approval, "approval link")
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"type":"approval.requested"}`)
	now := time.Unix(1_780_000_000, 0)
	good := webhook.Sign(testSecret, body, now)
	other := webhook.Sign([]byte("rotated-secret-0123456789"), body, now)
	v1 := func(h string) string { return h[strings.Index(h, "v1="):] }
	tests := []struct {
		name      string
		secret    []byte
		header    string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"valid", testSecret, good, body, now, time.Minute, nil},
		{"valid at tolerance edge", testSecret, good, body, now.Add(time.Minute), time.Minute, nil},
		{"valid with spaces", testSecret, strings.ReplaceAll(good, ",", ", "), body, now, time.Minute, nil},
		{"second v1 matches", testSecret, other + "," + v1(good), body, now, time.Minute, nil},
		{"unknown key ignored", testSecret, good + ",v2=zzz", body, now, time.Minute, nil},
		{"tampered body", testSecret, good, append(body, ' '), now, time.Minute, webhook.ErrInvalidSignature},
		{"wrong secret", []byte("not-the-secret-at-all"), good, body, now, time.Minute, webhook.ErrInvalidSignature},
		{"empty secret", nil, good, body, now, time.Minute, webhook.ErrInvalidSignature},
		{"stale", testSecret, good, body, now.Add(time.Minute + time.Second), time.Minute, webhook.ErrStaleSignature},
		{"from the future", testSecret, good, body, now.Add(-time.Hour), time.Minute, webhook.ErrStaleSignature},
		{"zero tolerance", testSecret, good, body, now, 0, webhook.ErrInvalidSignature},
		{"empty header", testSecret, "", body, now, time.Minute, webhook.ErrInvalidSignature},
		{"no t", testSecret, v1(good), body, now, time.Minute, webhook.ErrInvalidSignature},
		{"no v1", testSecret, "t=1780000000", body, now, time.Minute, webhook.ErrInvalidSignature},
		{"t not a number", testSecret, "t=abc," + v1(good), body, now, time.Minute, webhook.ErrInvalidSignature},
		{"negative t", testSecret, "t=-1," + v1(good), body, now, time.Minute, webhook.ErrInvalidSignature},
		{"t twice", testSecret, "t=1780000000," + good, body, now, time.Minute, webhook.ErrInvalidSignature},
		{"t changed", testSecret, "t=1780000001," + v1(good), body, now, time.Minute, webhook.ErrInvalidSignature},
		{"v1 not hex", testSecret, "t=1780000000,v1=xyz", body, now, time.Minute, webhook.ErrInvalidSignature},
		{"v1 truncated", testSecret, good[:len(good)-2], body, now, time.Minute, webhook.ErrInvalidSignature},
		{"part without =", testSecret, good + ",junk", body, now, time.Minute, webhook.ErrInvalidSignature},
		{"oversized", testSecret, good + strings.Repeat(",x=y", 2000), body, now, time.Minute, webhook.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.VerifySignature(tt.secret, tt.header, tt.body, tt.now, tt.tolerance)
			if tt.want == nil {
				assert.NoError(t, err, "VerifySignature(%s)", tt.name)
				return
			}
			assert.ErrorIs(t, err, tt.want, "VerifySignature(%s)", tt.name)
			if err != nil {
				assert.NotContains(t, err.Error(), string(tt.body), "error quotes the body")
			}
		})
	}
}

func TestSignKnownAnswer(t *testing.T) {
	// HMAC-SHA256(key "secret", "1700000000.{}"), computed independently
	// with: printf '1700000000.{}' | openssl dgst -sha256 -hmac secret
	got := webhook.Sign([]byte("secret"), []byte("{}"), time.Unix(1_700_000_000, 0))
	want := "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
	assert.Equal(t, want, got, "Sign(known answer)")
}
