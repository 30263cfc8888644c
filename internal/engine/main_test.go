package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when one leaves a goroutine behind: an
// engine whose writer or work outlives Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestWriterLifecycle: the group-commit writer's Stop flushes lazy writes,
// refuses later ones, and is safe twice and concurrently; its flusher ends.
func TestWriterLifecycle(t *testing.T) {
	t.Parallel()
	st := &countingBatches{}
	w := newWriter(st, time.Hour) // lazy writes only flush on Stop
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	w.add(write{events: []store.Event{{RunID: "r", To: "RUNNING"}}}, nil)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); w.Stop() }()
	}
	wg.Wait()
	w.close()
	if got := st.events(); got != 1 {
		t.Fatalf("%d events committed by Stop, want the lazy one", got)
	}
	if err := w.sync(write{}); !errors.Is(err, errWriterClosed) {
		t.Fatalf("write after Stop: %v, want errWriterClosed", err)
	}
}

type countingBatches struct {
	mu sync.Mutex
	n  int
}

func (c *countingBatches) BatchWrite(_ context.Context, b store.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += len(b.Events)
	return nil
}

func (c *countingBatches) events() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
