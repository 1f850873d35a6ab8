package ledger

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Ledger's Prometheus instruments; a nil *metrics records
// nothing.
type metrics struct {
	batch    prometheus.Histogram
	duration prometheus.Histogram
	errors   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "oars_ledger_append_batch_leaves",
			Help:    "Leaves per store write (group commit batch size).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "oars_ledger_append_duration_seconds",
			Help:    "Latency of one durable store write.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oars_ledger_append_errors_total",
			Help: "Store writes that failed (conflicts included).",
		}),
	}
	for _, c := range []prometheus.Collector{m.batch, m.duration, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) commit(leaves int, d time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.errors.Inc()
		return
	}
	m.batch.Observe(float64(leaves))
	m.duration.Observe(d.Seconds())
}
