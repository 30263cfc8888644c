package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// FuzzLogListSearch: LogList's Search finds a line exactly when its
// message contains the text searched for, ASCII letters folded and every
// other byte as it is (LIKE's wildcards and escape included, bytes that
// EncodeText escapes too).
func FuzzLogListSearch(f *testing.F) {
	for _, seed := range [][2]string{
		{"plate 1 of 3: 50% done", "50%"}, {"plate_2", "e_2"}, {`back\slash`, `k\s`}, {"Étalon", "étalon"},
		{"NUL \x00 here", "\x00 h"}, {"dle \x10 x", "\x10"}, {"bad \xff byte", "\xff"}, {"ABC", "abc"}, {"", ""},
		{"a%b", "a_b"}, {"caf\u00e9", "CAF"},
	} {
		f.Add(seed[0], seed[1])
	}
	s, err := Open(context.Background(), f.TempDir()+"/baton.db")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, message, search string) {
		if search == "" {
			return // no filter
		}
		ctx := context.Background()
		run := fmt.Sprintf("fuzz-%d", seq.Add(1))
		if err := s.BatchWrite(ctx, store.Batch{Logs: []store.LogRecord{{RunID: run, Level: "INFO", Message: message, At: time.Unix(1, 0)}}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.LogList(ctx, store.LogListParams{RunID: run, Search: search})
		if err != nil {
			t.Fatal(err)
		}
		// The stored text is EncodeText's: a byte it escapes matches its
		// escape, so the reference compares the stored forms.
		want := strings.Contains(foldASCII(store.EncodeText(message)), foldASCII(store.EncodeText(search)))
		if (len(got) == 1) != want {
			t.Fatalf("message %q, search %q: found %d, want found %v", message, search, len(got), want)
		}
	})
}

func foldASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
