package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oarsdev/oars/ledger"
)

// httpMetrics are the handler's Prometheus instruments; a nil *httpMetrics
// records nothing.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

// ledgerSizeTimeout bounds reading the ledger size during a scrape.
const ledgerSizeTimeout = 2 * time.Second

func newHTTPMetrics(reg *prometheus.Registry, l *ledger.Ledger, version string, log *slog.Logger) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oars_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "oars_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "oars_build_info",
		Help:        "Always 1; the version label names the running server version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	size := &ledgerSizeCollector{
		ledger: l,
		log:    log,
		desc:   prometheus.NewDesc("oars_ledger_size", "Number of entries in the ledger.", nil, nil),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, build, size} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts one request.
func (m *httpMetrics) observe(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// ledgerSizeCollector reports the ledger size at scrape time. When the
// store cannot answer in time the metric is left out of the scrape (and the
// error logged) rather than reported wrong.
type ledgerSizeCollector struct {
	ledger *ledger.Ledger
	log    *slog.Logger
	desc   *prometheus.Desc
}

func (c *ledgerSizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *ledgerSizeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerSizeTimeout)
	defer cancel()
	n, err := c.ledger.Size(ctx)
	if err != nil {
		c.log.Warn("metrics: reading the ledger size failed", slog.Any("error", err))
		return
	}
	m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
	if err != nil {
		c.log.Warn("metrics: ledger size", slog.Any("error", err))
		return
	}
	ch <- m
}
