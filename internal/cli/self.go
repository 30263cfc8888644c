package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
)

// SelfCommand returns how to invoke the running program again, for the
// commands that hints print: name when it is an installed binary, or
// "go run ./cmd/baton" (the main package relative to the module root) when
// it runs from a `go run` build, which puts no binary on PATH.
func SelfCommand(name string) string {
	exe, err := os.Executable()
	if err != nil || !IsGoRunBuild(exe) {
		return name
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name
	}
	return GoRunCommand(bi.Path, bi.Main.Path, name)
}

// goBuildHash is the name of a cached `go run` executable's directory.
var goBuildHash = regexp.MustCompile(`^[0-9a-f]{64}-d$`)

// IsGoRunBuild reports whether exe is an executable that `go run` built: in
// a temporary go-build directory ($TMPDIR/go-build123/b001/exe/NAME) or in
// the build cache ($GOCACHE/xx/HASH-d/NAME).
func IsGoRunBuild(exe string) bool {
	dir := filepath.Dir(filepath.Clean(exe))
	if goBuildHash.MatchString(filepath.Base(dir)) {
		return true
	}
	for d := dir; ; d = filepath.Dir(d) {
		if strings.HasPrefix(filepath.Base(d), "go-build") {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// GoRunCommand is the `go run` command of the main package pkg of module
// mod, run from the module's root: "go run ./cmd/baton", "go run .". A
// package outside mod is named in full; without a package, name is returned.
func GoRunCommand(pkg, mod, name string) string {
	switch {
	case pkg == "" || pkg == "command-line-arguments" || strings.HasSuffix(pkg, ".test"):
		return name
	case pkg == mod:
		return "go run ."
	case mod != "" && strings.HasPrefix(pkg, mod+"/"):
		return "go run ./" + strings.TrimPrefix(pkg, mod+"/")
	}
	return "go run " + pkg
}
