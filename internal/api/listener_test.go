package api

import (
	"net/url"
	"strings"
	"testing"
)

func TestFixRequestLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"GET /api/v1/runs/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n", "GET " + MalformedURLPath + "?target=%2Fapi%2Fv1%2Fruns%2F%25ZZ HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"POST /a%2 HTTP/1.0\nHost: x\n\n", "POST " + MalformedURLPath + "?target=%2Fa%252 HTTP/1.0\r\nHost: x\n\n"},
		{"GET /api/v1/runs/%41 HTTP/1.1\r\n\r\n", "GET /api/v1/runs/%41 HTTP/1.1\r\n\r\n"},
		{"GET /api/v1/runs?x=%ZZ HTTP/1.1\r\n\r\n", "GET /api/v1/runs?x=%ZZ HTTP/1.1\r\n\r\n"}, // the query is checked by the handler
		{"GET /%ZZ", "GET /%ZZ"},                               // no complete line
		{"PRI * HTTP/2.0\r\n", "PRI * HTTP/2.0\r\n"},           // not an origin-form target
		{"GET /%ZZ HTTP/1.1 x\r\n", "GET /%ZZ HTTP/1.1 x\r\n"}, // not a request line Go accepts anyway
	}
	for _, tt := range tests {
		if got := string(FixRequestLine([]byte(tt.in))); got != tt.want {
			t.Errorf("FixRequestLine(%q) =\n%q, want\n%q", tt.in, got, tt.want)
		}
	}
}

func FuzzFixRequestLine(f *testing.F) {
	for _, s := range []string{"GET /%ZZ HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n", "GET /%zz%", "\n", "POST /a?%ZZ HTTP/1.1\r\nbody"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := string(FixRequestLine([]byte(s)))
		if got == s {
			return
		}
		// A rewritten line keeps the method, version and the rest, and
		// carries the original target.
		line, rest, _ := strings.Cut(got, "\r\n")
		_, origRest, _ := strings.Cut(s, "\n")
		if rest != origRest {
			t.Fatalf("rest changed: %q -> %q", s, got)
		}
		parts := strings.Split(line, " ")
		if len(parts) != 3 || !strings.HasPrefix(parts[1], MalformedURLPath+"?target=") {
			t.Fatalf("bad rewrite %q -> %q", s, got)
		}
		u, err := url.ParseRequestURI(parts[1])
		if err != nil {
			t.Fatalf("rewritten target %q is not valid: %v", parts[1], err)
		}
		if !strings.Contains(s, u.Query().Get("target")) {
			t.Fatalf("target %q not from %q", u.Query().Get("target"), s)
		}
	})
}
