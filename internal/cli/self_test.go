package cli

import "testing"

func TestGoRunDetection(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		exe  string
		want bool
	}{
		{"/tmp/go-build3998331881/b001/exe/baton", true},
		{"/root/.cache/go-build/d5/d53781aea36a93d2b21540629e136a5cf389b8ce0a3c4c118dc8745e9b72dad5-d/baton", true},
		{"/home/me/cache/d5/d53781aea36a93d2b21540629e136a5cf389b8ce0a3c4c118dc8745e9b72dad5-d/baton", true},
		{"/usr/local/bin/baton", false},
		{"/home/me/go/bin/baton", false},
		{"./baton", false},
	} {
		if got := IsGoRunBuild(tt.exe); got != tt.want {
			t.Errorf("IsGoRunBuild(%q) = %v, want %v", tt.exe, got, tt.want)
		}
	}
	for _, tt := range []struct{ pkg, mod, want string }{
		{"github.com/batonhq/baton/cmd/baton", "github.com/batonhq/baton", "go run ./cmd/baton"},
		{"github.com/batonhq/baton/examples/etl", "github.com/batonhq/baton", "go run ./examples/etl"},
		{"example.com/myflows", "example.com/myflows", "go run ."},
		{"github.com/batonhq/baton/cmd/baton", "example.com/other", "go run github.com/batonhq/baton/cmd/baton"},
		{"command-line-arguments", "", "baton"},
		{"github.com/batonhq/baton/internal/cli.test", "github.com/batonhq/baton", "baton"},
	} {
		if got := GoRunCommand(tt.pkg, tt.mod, "baton"); got != tt.want {
			t.Errorf("GoRunCommand(%q, %q) = %q, want %q", tt.pkg, tt.mod, got, tt.want)
		}
	}
}
