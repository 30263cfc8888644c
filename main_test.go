package baton_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when goroutines outlive them: every
// runtime, engine and store a test opens must be closed, and every
// goroutine it starts must end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
