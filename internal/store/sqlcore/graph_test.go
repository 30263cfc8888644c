package sqlcore

import (
	"fmt"
	"reflect"
	"testing"
)

// TestStepRanges: the steps' read covers every key but the maps' item
// ranges (key ".", key "/"), merged when they nest or overlap, and falls
// back to one open range for many maps.
func TestStepRanges(t *testing.T) {
	t.Parallel()
	many := make([]string, graphStepRanges+1)
	for i := range many {
		many[i] = fmt.Sprintf("m/%d", i)
	}
	for _, tc := range []struct {
		maps []string
		want [][2]string
	}{
		{nil, [][2]string{{"", ""}}},
		{[]string{"sq/1"}, [][2]string{{"", "sq/1."}, {"sq/1/", ""}}},
		{[]string{"b/2", "a/1"}, [][2]string{{"", "a/1."}, {"a/1/", "b/2."}, {"b/2/", ""}}},
		{[]string{"a", "a.b"}, [][2]string{{"", "a."}, {"a/", ""}}},
		{many, [][2]string{{"", ""}}},
	} {
		if got := stepRanges(tc.maps); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("stepRanges(%v) = %v, want %v", tc.maps, got, tc.want)
		}
	}
}
