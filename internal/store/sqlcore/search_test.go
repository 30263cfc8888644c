package sqlcore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// recorder is a Dialect that records the statements it is given and
// returns no rows, or for QueryRow the row of bound (ErrNotFound when nil).
type recorder struct {
	bound *int64
	sqls  []string
	args  [][]any
}

type recRow struct{ bound *int64 }

func (r recRow) Scan(dest ...any) error {
	if r.bound == nil {
		return store.ErrNotFound
	}
	*dest[0].(*int64) = *r.bound
	return nil
}

type noRows struct{}

func (noRows) Scan(...any) error { return errors.New("no row") }
func (noRows) Next() bool        { return false }
func (noRows) Err() error        { return nil }

func (r *recorder) record(sql string, args []any) {
	r.sqls, r.args = append(r.sqls, sql), append(r.args, args)
}

func (r *recorder) Query(_ context.Context, fn func(Rows) error, sql string, args ...any) error {
	r.record(sql, args)
	return fn(noRows{})
}

func (r *recorder) QueryRow(_ context.Context, sql string, args ...any) Row {
	r.record(sql, args)
	return recRow{r.bound}
}

func (r *recorder) Exec(_ context.Context, sql string, args ...any) error {
	r.record(sql, args)
	return nil
}

func (r *recorder) Batch(context.Context, ...Stmt) error { return errors.New("no batch") }

func (r *recorder) WriteTx(context.Context, string, func(Tx) error) error {
	return errors.New("no writes")
}

func (r *recorder) Translate(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// TestRunListSearchStatements: RunList's search reads the bound of its
// scan, scans the newest runs up to it, and only then the index's
// candidates; a term too short for trigrams, or fewer runs than the
// budget, is one scan; every statement binds as many arguments as it
// names.
func TestRunListSearchStatements(t *testing.T) {
	t.Parallel()
	sx := Syntax{RunTieBreak: "rowid", FoldLike: func(e string) string { return e },
		SearchCandidates: func(a *Args, term, _ string) string { return "rowid IN (candidates of " + a.Add(term) + ")" }}
	at := int64(42)
	for _, tc := range []struct {
		name  string
		p     store.RunListParams
		bound *int64
		want  []string // the start of each statement's WHERE, after "FROM runs"
	}{
		{"short term", store.RunListParams{Search: "ab"}, &at, []string{"search scan"}},
		{"not UTF-8", store.RunListParams{Search: "ab\xff"}, &at, []string{"search scan"}},
		{"few runs", store.RunListParams{Search: "abc"}, nil, []string{"bound", "search scan"}},
		{"index", store.RunListParams{Search: "abc", State: store.RunFailed, Limit: 5, Offset: 7}, &at,
			[]string{"bound", "bounded scan", "candidates"}},
		{"no search", store.RunListParams{State: store.RunFailed}, &at, []string{"plain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{bound: tc.bound}
			if _, err := New(r, sx).RunList(context.Background(), tc.p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, q := range r.sqls {
				kind := "plain"
				switch {
				case strings.HasPrefix(q, "SELECT created_at FROM runs"):
					kind = "bound"
					limit := 100
					if tc.p.Limit > 0 {
						limit = tc.p.Limit
					}
					if n := r.args[i][len(r.args[i])-1]; n != int64(searchScanBudget+tc.p.Offset+limit-1) {
						t.Errorf("bound's offset %v, want %d", n, searchScanBudget+tc.p.Offset+limit-1)
					}
					if strings.Contains(q, "LIKE") {
						t.Errorf("bound %q checks the search", q)
					}
				case strings.Contains(q, "candidates of"):
					kind = "candidates"
				case strings.Contains(q, "created_at >= "):
					kind = "bounded scan"
				case strings.Contains(q, "LIKE"):
					kind = "search scan"
				}
				got = append(got, kind)
				if n := strings.Count(q, "$"); n > 0 && !strings.Contains(q, fmt.Sprintf("$%d", len(r.args[i]))) {
					t.Errorf("%s %q: %d arguments, not all named", kind, q, len(r.args[i]))
				}
				if strings.Contains(q, fmt.Sprintf("$%d", len(r.args[i])+1)) {
					t.Errorf("%s %q: %d arguments, more named", kind, q, len(r.args[i]))
				}
				if kind != "bound" && kind != "plain" && !strings.Contains(q, "id LIKE ") {
					t.Errorf("%s %q lacks the exact predicate", kind, q)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("statements %v, want %v:\n%s", got, tc.want, strings.Join(r.sqls, "\n"))
			}
		})
	}
}

func TestSearchIndexable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		term string
		want bool
	}{
		{"abc", true},
		{"ab", false},
		{"é", false},
		{"éàü", true}, // characters, not bytes
		{"a%_", true},
		{"ab\x00c", false},
		{"ab\xffc", false},
		{"", false},
	} {
		if got := searchIndexable(tc.term); got != tc.want {
			t.Errorf("searchIndexable(%q) = %v, want %v", tc.term, got, tc.want)
		}
	}
}

func TestSearchPredicate(t *testing.T) {
	t.Parallel()
	c := New(nil, Syntax{FoldLike: func(e string) string { return "f(" + e + ")" }})
	var a Args
	a.Add("x")
	got := c.searchPredicate(&a, `50%_Ab\É`)
	want := `(f(id) LIKE $2 ESCAPE '\' OR f(flow) LIKE $2 ESCAPE '\' OR f(COALESCE(parameters, '')) LIKE $2 ESCAPE '\')`
	if got != want {
		t.Errorf("predicate %s, want %s", got, want)
	}
	if pat := a[1]; pat != `%50\%\_ab\\É%` {
		t.Errorf("pattern %q", pat)
	}
}
