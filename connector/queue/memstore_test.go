package queue_test

import (
	"testing"

	"github.com/oarsdev/oars/connector/queue"
	"github.com/oarsdev/oars/connector/queue/queuetest"
)

func TestQueueMemStore(t *testing.T) {
	queuetest.Run(t, func(*testing.T) queue.Store { return queue.NewMemStore() })
}
