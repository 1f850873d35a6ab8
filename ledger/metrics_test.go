package ledger_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oarsdev/oars/ledger"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	l, err := ledger.New(ctx, ledger.NewMemStore(), ledger.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendBatch(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, []byte("d")); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "oars_ledger_append_batch_leaves" {
			count = mf.GetMetric()[0].GetHistogram().GetSampleCount()
			sum = mf.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	if count != 2 || sum != 4 {
		t.Errorf("batch histogram: %d writes of %v leaves, want 2 writes of 4", count, sum)
	}
	if n, err := testutil.GatherAndCount(reg, "oars_ledger_append_duration_seconds"); err != nil || n != 1 {
		t.Errorf("duration histogram series = %d, %v; want 1", n, err)
	}
	if _, err := ledger.New(ctx, ledger.NewMemStore(), ledger.WithMetrics(reg)); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}
