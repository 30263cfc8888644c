package sqlite

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
)

// FuzzSearchCandidates: for any search term of 3 characters or more, the
// FTS5 phrase that SearchCandidates builds (the term quoted, whatever its
// characters) is valid, and the runs it finds include every run that
// RunList's exact predicate matches: a run holding the term in its
// parameters, its ID or its flow, with other ASCII case, and runs that
// do not.
func FuzzSearchCandidates(f *testing.F) {
	for _, seed := range []string{"abc", `"pct"`, `a"b"c`, "Étalon", "zÜrich", "50%", "a_b", "NEAR(x y)", "x OR y",
		"col:abc", "^abc", "abc*", "-abc", "\t\n ", "日本語", "a\\b"} {
		f.Add(seed)
	}
	s, err := Open(context.Background(), f.TempDir()+"/baton.db")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	n := 0
	f.Fuzz(func(t *testing.T, term string) {
		if !strings.Contains(term, "\x00") && utf8.ValidString(term) && utf8.RuneCountInString(term) >= 3 {
			ctx := context.Background()
			n++
			id := func(s string) string { return s + "-" + strings.Repeat("x", n%7) + strconv.Itoa(n) }
			upper := strings.ToUpper(term) // ASCII and other letters: the candidates fold case
			runs := []store.Run{
				{ID: id("p"), Flow: "f", State: store.RunRunning, Parameters: json.RawMessage(`{"v":` + mustJSON(term) + `}`)},
				{ID: id("i") + term, Flow: "f", State: store.RunRunning},
				{ID: id("u"), Flow: upper, State: store.RunRunning},
				{ID: id("n"), Flow: "none", State: store.RunRunning, Parameters: json.RawMessage(`{"v":"other"}`)},
			}
			if err := s.BatchWrite(ctx, store.Batch{Runs: runs}); err != nil {
				t.Skipf("BatchWrite: %v", err) // an ID the store refuses
			}
			var a sqlcore.Args
			pat := a.Add("%" + sqlcore.LikeEscape(asciiLower(term)) + "%")
			exact := "(id LIKE " + pat + " ESCAPE '\\' OR flow LIKE " + pat + " ESCAPE '\\' OR COALESCE(parameters, '') LIKE " +
				pat + " ESCAPE '\\')"
			cand := syntax.SearchCandidates(&a, term, exact)
			count := func(where string, args []any) int {
				var c int
				if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM runs WHERE "+where, args...).Scan(&c); err != nil {
					t.Fatalf("count where %s (%q): %v", where, args, err)
				}
				return c
			}
			all, found := count(exact, a[:1]), count(exact+" AND "+cand, a)
			if found != all || all < 1 {
				t.Errorf("term %q: the index finds %d of the %d runs that match (at least 1 does)", term, found, all)
			}
		}
	})
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
