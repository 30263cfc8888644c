package batontest

import (
	"slices"
	"testing"
)

// TestCompareStepKeys: step keys sort by their numbers, so map items come
// in index order whatever order they were created in.
func TestCompareStepKeys(t *testing.T) {
	t.Parallel()
	keys := []string{"x/2.10", "odd", "y/10", "x/2.9", "x/0", "y/9", "x/2.0"}
	slices.SortStableFunc(keys, compareStepKeys)
	want := []string{"x/0", "x/2.0", "x/2.9", "x/2.10", "y/9", "y/10", "odd"}
	if !slices.Equal(keys, want) {
		t.Errorf("sorted %v, want %v", keys, want)
	}
}
