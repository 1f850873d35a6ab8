package stepup_test

import (
	"testing"

	"github.com/oarsdev/oars/approval/stepup"
	"github.com/oarsdev/oars/approval/stepup/stepuptest"
)

func TestMemStoreConformance(t *testing.T) {
	stepuptest.Run(t, func(*testing.T) stepup.Store { return &stepup.MemStore{} })
}
