package postgres

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when one leaves a goroutine behind (a
// notifier or a pool that outlives its store's Close), once the shared
// admin pool is closed.
func TestMain(m *testing.M) {
	code := m.Run()
	if adminPool != nil {
		adminPool.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
