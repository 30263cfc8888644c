package postgres

import (
	"testing"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/storebench"
)

// BenchmarkStore runs the backends' common benchmarks (storebench) on a
// schema of its own.
func BenchmarkStore(b *testing.B) {
	storebench.Run(b, func(b *testing.B) store.Store { return openStore(b) })
}
