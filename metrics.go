package oars

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oarsdev/oars/receipt"
)

// metrics are the Guard's Prometheus instruments; a nil *metrics records
// nothing.
type metrics struct {
	decisions *prometheus.CounterVec
	byStatus  map[receipt.Status]prometheus.Counter
	latency   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oars_decisions_total",
			Help: "Decisions recorded by the Guard, by the status of the decision receipt.",
		}, []string{"status"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "oars_decision_duration_seconds",
			Help:    "Time to decide an action and durably record its decision receipt.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		byStatus: map[receipt.Status]prometheus.Counter{},
	}
	for _, c := range []prometheus.Collector{m.decisions, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("oars: metrics: %w", err)
		}
	}
	for _, s := range []receipt.Status{receipt.StatusAllowed, receipt.StatusDenied, receipt.StatusPendingApproval} {
		m.byStatus[s] = m.decisions.WithLabelValues(string(s))
	}
	return m, nil
}

// observe records the decision of out, if any, and its latency.
func (m *metrics) observe(out *Outcome, start time.Time) {
	if m == nil || out == nil || len(out.Receipts) == 0 || out.Replayed {
		return
	}
	if c, ok := m.byStatus[out.Receipts[0].Receipt.Status]; ok {
		c.Inc()
	}
	m.latency.Observe(time.Since(start).Seconds())
}
