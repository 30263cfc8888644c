package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the version of Baton printed by `baton version`. Release builds
// set it with
//
//	go build -ldflags "-X github.com/batonhq/baton/internal/cli.Version=v1.2.3" ./cmd/baton
//
// When it is left at "dev", the version of the main module recorded in the
// binary's build information is used if it is a real one (as with
// `go install github.com/batonhq/baton/cmd/baton@v1.2.3`).
var Version = "dev"

// ResolvedVersion returns Version, or the main module's version from the
// build information when Version is "dev" and the module has a real version.
func ResolvedVersion() string {
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

// VersionCommand returns `version`, which prints
// "baton <version> (<go version> <os>/<arch>)".
func VersionCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of baton",
		Args:  runsExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(env.Stdout, "baton %s (%s %s/%s)\n", ResolvedVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
