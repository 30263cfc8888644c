package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// testLogListSearch: LogList's Search matches text in the message (ASCII
// case-insensitively, other letters as they are, wildcards literal, text
// that EncodeText escapes too) and MinLevel keeps the lines at a level or
// above, with Search, TaskKey, TaskRunID, After and Limit together.
func testLogListSearch(t *testing.T, s store.Store) {
	ctx := context.Background()
	lines := []store.LogRecord{
		{RunID: "r", Level: "DEBUG", Message: "Loading the Plate map", At: at(1)},
		{RunID: "r", Level: "INFO", TaskKey: "k/1", TaskRunID: "tr-a", Message: "plate 1 of 3: 50% done", At: at(2)},
		{RunID: "r", Level: "INFO+2", TaskKey: "k/1", TaskRunID: "tr-b", Message: "plate_2 loaded", At: at(3)},
		{RunID: "r", Level: "WARN", TaskKey: "k/2", Message: "PLATE 3 is warm", At: at(4)},
		{RunID: "r", Level: "ERROR", TaskKey: "k/2", Message: "plate 3 failed: Étalon missing", At: at(5)},
		{RunID: "r", Level: "ERROR+4", Message: "bytes \x00 and \x10 in the plate", At: at(6)},
		{RunID: "r", Level: "DEBUG-4", Message: "very verbose plate", At: at(7)},
		{RunID: "r", Level: "warning", Message: "another SDK's plate warning", At: at(8)},
		{RunID: "other", Level: "ERROR", Message: "plate elsewhere", At: at(9)},
	}
	write(t, s, store.Batch{Logs: lines})
	all, err := s.LogList(ctx, store.LogListParams{RunID: "r"})
	if err != nil || len(all) != 8 {
		t.Fatalf("LogList: %d records, %v", len(all), err)
	}
	ids := map[string]int64{}
	for _, l := range all {
		ids[l.Message] = l.ID
	}
	msgs := func(ix ...int) []string {
		out := []string{}
		for _, i := range ix {
			out = append(out, lines[i].Message)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		p    store.LogListParams
		want []string
	}{
		{"case-insensitive", store.LogListParams{Search: "plate"}, msgs(0, 1, 2, 3, 4, 5, 6, 7)},
		{"upper-case query", store.LogListParams{Search: "PLATE 3"}, msgs(3, 4)},
		{"percent is literal", store.LogListParams{Search: "50%"}, msgs(1)},
		{"underscore is literal", store.LogListParams{Search: "plate_"}, msgs(2)},
		{"other letters as they are", store.LogListParams{Search: "Étalon"}, msgs(4)},
		{"other letters are not folded", store.LogListParams{Search: "étalon"}, msgs()},
		{"escaped bytes", store.LogListParams{Search: "\x00 and \x10"}, msgs(5)},
		{"nothing", store.LogListParams{Search: "pipette"}, msgs()},
		{"min DEBUG is all", store.LogListParams{MinLevel: "DEBUG"}, msgs(0, 1, 2, 3, 4, 5, 6, 7)},
		{"min INFO", store.LogListParams{MinLevel: "info"}, msgs(1, 2, 3, 4, 5, 7)},
		{"min WARN", store.LogListParams{MinLevel: "WARN"}, msgs(3, 4, 5, 7)},
		{"min ERROR", store.LogListParams{MinLevel: "ERROR"}, msgs(4, 5)},
		{"level and search", store.LogListParams{MinLevel: "WARN", Search: "plate 3"}, msgs(3, 4)},
		{"task and search", store.LogListParams{TaskKey: "k/1", Search: "LOADED"}, msgs(2)},
		{"task run", store.LogListParams{TaskRunID: "tr-a"}, msgs(1)},
		{"task run and key", store.LogListParams{TaskKey: "k/1", TaskRunID: "tr-b"}, msgs(2)},
		{"task run of another key", store.LogListParams{TaskKey: "k/2", TaskRunID: "tr-b"}, msgs()},
		{"search pages with after", store.LogListParams{Search: "plate", After: ids[lines[3].Message], Limit: 2}, msgs(4, 5)},
		{"level pages with limit", store.LogListParams{MinLevel: "INFO", Limit: 2}, msgs(1, 2)},
	} {
		tc.p.RunID = "r"
		got, err := s.LogList(ctx, tc.p)
		if err != nil {
			t.Errorf("%s: LogList(%+v): %v", tc.name, tc.p, err)
			continue
		}
		gotMsgs := []string{}
		for _, l := range got {
			gotMsgs = append(gotMsgs, l.Message)
		}
		if !slices.Equal(gotMsgs, tc.want) {
			t.Errorf("%s: LogList(%+v) = %q, want %q", tc.name, tc.p, gotMsgs, tc.want)
		}
	}
	if _, err := s.LogList(ctx, store.LogListParams{RunID: "r", MinLevel: "LOUD"}); err == nil {
		t.Errorf("LogList with MinLevel LOUD: no error")
	}
}
