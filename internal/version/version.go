// Package version holds the version of Baton.
package version

import "runtime/debug"

// Version is the version of Baton. Release builds set it with
//
//	go build -ldflags "-X github.com/batonhq/baton/internal/version.Version=v1.2.3" ./cmd/baton
//
// When it is left at "dev", the version of the main module recorded in the
// binary's build information is used if it is a real one (as with
// `go install github.com/batonhq/baton/cmd/baton@v1.2.3`).
var Version = "dev"

// String returns Version, or the main module's version from the build
// information when Version is "dev" and the module has a real version.
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
	}
	return Version
}
